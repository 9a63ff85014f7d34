//! Per-peer adaptive jitter buffer (sans-IO: arrival and playout times are passed in).
//!
//! Packets go in with their frame index (RTP timestamp / 960) and arrival time; once per 20 ms
//! output frame, [`JitterBuffer::pop`] says how to make the next frame: its packet, the FEC copy
//! carried by the next packet, or concealment. A talkspurt starts playing
//! `(target - 1) × 20 ms` after its first packet arrived, so about `target` frames are held.
//! The target follows the spread of recent transit times (`arrival - index × 20 ms`, late
//! packets included): it grows when packets arrive unevenly and shrinks back when the path is
//! calm. It is applied where speech has gaps anyway: at the start of each talkspurt (DTX makes
//! one after every pause), and by skipping a frame when more than the target plus two frames
//! wait. Within a talkspurt the delay is otherwise fixed: a missing frame is concealed and play
//! moves on (a packet arriving after its frame played is dropped), so the voice never drifts
//! against its own timeline. After `idle_after` underruns in a row the peer is silent (DTX or
//! gone) and the next packet starts a new talkspurt.
//!
//! No allocation after construction: packets live in a fixed ring of reused buffers.

use std::time::Duration;

use super::codec::{FRAME, MAX_PACKET};

/// How a jitter buffer adapts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Smallest target depth, in 20 ms frames. Default: 2 (40 ms).
    pub min_frames: u32,
    /// Largest target depth, in 20 ms frames. Default: 10 (200 ms).
    pub max_frames: u32,
    /// Arrivals the jitter estimate looks back over. Default: 50 (one second of speech).
    pub window: usize,
    /// Underruns in a row after which the stream is idle. Default: 5 (100 ms).
    pub idle_after: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            min_frames: 2,
            max_frames: 10,
            window: 50,
            idle_after: 5,
        }
    }
}

/// How to make the next output frame of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Decode the frame's own packet.
    Packet(&'a [u8]),
    /// The frame was lost: decode the FEC copy in this (the next) packet.
    Fec(&'a [u8]),
    /// The frame is missing: conceal it.
    Conceal,
    /// Nothing is playing: output silence, decode nothing.
    Silent,
}

/// Counters of one jitter buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets accepted.
    pub received: u64,
    /// Frames played from their own packet.
    pub played: u64,
    /// Frames recovered from the next packet's FEC.
    pub fec: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Packets that arrived after their frame was played (or were duplicates).
    pub late: u64,
    /// Frames skipped to shrink the delay.
    pub skipped: u64,
}

#[derive(Debug, Clone)]
struct Slot {
    index: Option<u64>,
    data: Vec<u8>,
}

/// One peer's buffer between the network and the decoder.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    slots: Vec<Slot>,
    /// Next frame to play; `None` while idle.
    next: Option<u64>,
    /// Newest frame index buffered.
    newest: Option<u64>,
    /// When the current talkspurt may start playing; `None` once it plays.
    start_at: Option<Duration>,
    underruns: u32,
    /// Recent transit times (ms), a ring.
    transits: Vec<f64>,
    transit_pos: usize,
    target: u32,
    stats: JitterStats,
}

const SLOTS: u64 = 64;

impl JitterBuffer {
    /// An empty, idle buffer.
    pub fn new(config: JitterConfig) -> Self {
        let config = JitterConfig {
            min_frames: config.min_frames.max(1),
            max_frames: config.max_frames.max(config.min_frames.max(1)),
            window: config.window.max(1),
            idle_after: config.idle_after.max(1),
        };
        JitterBuffer {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    index: None,
                    data: Vec::with_capacity(MAX_PACKET),
                })
                .collect(),
            next: None,
            newest: None,
            start_at: None,
            underruns: 0,
            transits: Vec::with_capacity(config.window),
            transit_pos: 0,
            target: config.min_frames,
            stats: JitterStats::default(),
            config,
        }
    }

    /// Takes the packet of frame `index` that arrived at `now`. Oversized packets are ignored.
    pub fn push(&mut self, index: u64, packet: &[u8], now: Duration) {
        if packet.len() > MAX_PACKET {
            return;
        }
        // Late packets count too: they are what the target must grow for.
        self.observe_transit(index, now);
        if let Some(next) = self.next {
            if index < next {
                self.stats.late += 1;
                return;
            }
            if index >= next.saturating_add(SLOTS) {
                // Far ahead (the peer restarted its clock): start over.
                self.clear();
            }
        }
        let slot = &mut self.slots[(index % SLOTS) as usize];
        if slot.index == Some(index) {
            self.stats.late += 1;
            return;
        }
        slot.index = Some(index);
        slot.data.clear();
        slot.data.extend_from_slice(packet);
        self.stats.received += 1;
        self.newest = Some(self.newest.map_or(index, |n| n.max(index)));
        match self.next {
            None => {
                self.next = Some(index);
                self.start_at = Some(now + FRAME * (self.target - 1));
            }
            Some(next) if self.start_at.is_some() && index < next => self.next = Some(index),
            Some(_) => {}
        }
    }

    fn observe_transit(&mut self, index: u64, now: Duration) {
        let transit = now.as_secs_f64() * 1000.0 - index as f64 * FRAME.as_secs_f64() * 1000.0;
        if self.transits.len() < self.config.window {
            self.transits.push(transit);
        } else {
            self.transits[self.transit_pos] = transit;
        }
        self.transit_pos = (self.transit_pos + 1) % self.config.window;
        let (lo, hi) = self
            .transits
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        let frame_ms = FRAME.as_secs_f64() * 1000.0;
        let spread = ((hi - lo) / frame_ms).ceil() as u32;
        self.target = spread
            .saturating_add(1)
            .clamp(self.config.min_frames, self.config.max_frames);
    }

    fn holds(&self, index: u64) -> bool {
        self.slots[(index % SLOTS) as usize].index == Some(index)
    }

    fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.index = None;
        }
        self.next = None;
        self.newest = None;
        self.start_at = None;
        self.underruns = 0;
    }

    /// Says how to make the output frame due at `now`; call once per 20 ms.
    pub fn pop(&mut self, now: Duration) -> Playout<'_> {
        let Some(mut next) = self.next else {
            return Playout::Silent;
        };
        if let Some(start) = self.start_at {
            if now < start {
                return Playout::Silent;
            }
            self.start_at = None;
        }
        let newest = self.newest.unwrap_or(next);
        // More buffered than the target plus two frames of slack: skip one to catch up.
        if newest >= next.saturating_add(u64::from(self.target) + 2)
            && self.holds(next.saturating_add(1))
        {
            self.slots[(next % SLOTS) as usize].index = None;
            next = next.saturating_add(1);
            self.stats.skipped += 1;
        }
        if self.holds(next) {
            self.next = Some(next.saturating_add(1));
            self.underruns = 0;
            self.stats.played += 1;
            let slot = &mut self.slots[(next % SLOTS) as usize];
            slot.index = None;
            return Playout::Packet(&slot.data);
        }
        if self.holds(next.saturating_add(1)) {
            self.next = Some(next.saturating_add(1));
            self.underruns = 0;
            self.stats.fec += 1;
            return Playout::Fec(&self.slots[(next.saturating_add(1) % SLOTS) as usize].data);
        }
        // Missing: conceal and move on (a late packet for it will be dropped).
        self.stats.concealed += 1;
        self.next = Some(next.saturating_add(1));
        if newest > next {
            self.underruns = 0;
        } else {
            // Nothing buffered: an underrun; after enough of them the talker is silent.
            self.underruns += 1;
            if self.underruns >= self.config.idle_after {
                self.clear();
                return Playout::Silent;
            }
        }
        Playout::Conceal
    }

    /// The current target depth.
    pub fn target_delay(&self) -> Duration {
        FRAME * self.target
    }

    /// Whether a talkspurt is playing or about to.
    pub fn is_active(&self) -> bool {
        self.next.is_some()
    }

    /// The counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn kind(p: Playout<'_>) -> (char, Option<u8>) {
        match p {
            Playout::Packet(d) => ('P', d.first().copied()),
            Playout::Fec(d) => ('F', d.first().copied()),
            Playout::Conceal => ('C', None),
            Playout::Silent => ('S', None),
        }
    }

    #[test]
    fn even_arrivals_play_in_order_after_the_minimum_delay() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = Vec::new();
        for i in 0..20u64 {
            jb.push(i, &[i as u8], ms(100 + i * 20));
            out.push(kind(jb.pop(ms(100 + i * 20 + 1))));
        }
        assert_eq!(out[0], ('S', None), "waits one frame before the first");
        for (i, o) in out[1..].iter().enumerate() {
            assert_eq!(*o, ('P', Some(i as u8)), "frame {i}");
        }
        assert_eq!(jb.target_delay(), ms(40));
        assert_eq!(jb.stats().concealed, 0);
    }

    #[test]
    fn a_lost_packet_is_recovered_from_the_next_ones_fec() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = Vec::new();
        for i in 0..10u64 {
            if i != 4 {
                jb.push(i, &[i as u8], ms(i * 20));
            }
            out.push(kind(jb.pop(ms(i * 20 + 1))));
        }
        assert_eq!(out[5], ('F', Some(5)), "frame 4 from packet 5's FEC");
        assert_eq!(out[6], ('P', Some(5)));
        assert_eq!(jb.stats().fec, 1);
    }

    #[test]
    fn two_lost_packets_are_concealed_then_recovered() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for i in 0..3u64 {
            jb.push(i, &[i as u8], ms(0));
        }
        jb.push(5, &[5], ms(0));
        let out: Vec<_> = (0..6).map(|t| kind(jb.pop(ms(20 + t * 20)))).collect();
        assert_eq!(
            out,
            [
                ('P', Some(0)),
                ('P', Some(1)),
                ('P', Some(2)),
                ('C', None),
                ('F', Some(5)),
                ('P', Some(5)),
            ]
        );
    }

    #[test]
    fn jitter_grows_the_target_and_calm_shrinks_it() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Arrivals swing by 0..80 ms.
        for i in 0..50u64 {
            let swing = [0, 80, 20, 60, 40][(i % 5) as usize];
            jb.push(i, &[0], ms(i * 20 + swing));
            jb.pop(ms(i * 20 + 10));
        }
        let grown = jb.target_delay();
        assert!(grown >= ms(100), "target {grown:?} under 80 ms of jitter");
        for i in 50..150u64 {
            jb.push(i, &[0], ms(i * 20));
            jb.pop(ms(i * 20 + 10));
        }
        assert_eq!(
            jb.target_delay(),
            ms(40),
            "calm brings the target back down"
        );
    }

    #[test]
    fn a_late_packet_is_concealed_then_silence_goes_idle() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(0, &[0], ms(0));
        assert_eq!(kind(jb.pop(ms(20))), ('P', Some(0)));
        // Packet 1 is late: its frame is concealed, play moves on, the packet is dropped.
        assert_eq!(kind(jb.pop(ms(40))), ('C', None));
        jb.push(1, &[1], ms(45));
        jb.push(2, &[2], ms(50));
        assert_eq!(kind(jb.pop(ms(60))), ('P', Some(2)));
        assert_eq!(jb.stats().late, 1);
        // Then the talker stops (DTX): a few concealed frames, then silence.
        let out: Vec<_> = (0..6).map(|t| kind(jb.pop(ms(80 + t * 20)))).collect();
        assert_eq!(out[..4], [('C', None); 4]);
        assert_eq!(out[4..], [('S', None); 2]);
        assert!(!jb.is_active());
        // A new talkspurt starts afresh, after the target grown by late packet 1's 25 ms.
        assert_eq!(jb.target_delay(), ms(60));
        jb.push(50, &[50], ms(1000));
        assert_eq!(kind(jb.pop(ms(1021))), ('S', None));
        assert_eq!(kind(jb.pop(ms(1041))), ('P', Some(50)));
    }

    #[test]
    fn hostile_indices_do_not_overflow() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for index in [u64::MAX, u64::MAX - 1, 0, u64::MAX] {
            jb.push(index, &[1; 10], ms(0));
            for t in 0..3 {
                jb.pop(ms(20 * t));
            }
        }
        jb.push(0, &[0; MAX_PACKET + 1], ms(0));
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        jb.push(10, &[10], ms(0));
        jb.push(10, &[10], ms(0));
        jb.pop(ms(20));
        jb.push(9, &[9], ms(21));
        assert_eq!(jb.stats().late, 2);
        assert_eq!(jb.stats().received, 1);
    }

    #[test]
    fn a_backlog_is_skipped_down_to_the_target() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Ten frames arrive evenly (spread 0, target 2) while nothing is played.
        for i in 0..10u64 {
            jb.push(i, &[i as u8], ms(i * 20));
        }
        let first = jb.pop(ms(200));
        assert_eq!(kind(first), ('P', Some(1)), "frame 0 skipped");
        assert_eq!(jb.stats().skipped, 1);
    }
}

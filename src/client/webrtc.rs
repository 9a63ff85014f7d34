//! WebRTC links between introduced peers (cargo feature `webrtc`), on str0m (sans-IO).
//!
//! On [`PeerEntered`] the peer with the lower id offers (both sides compute the same rule, so
//! there is no glare); offer and answer travel through mingle's `Signal` relay with the host
//! candidates inside the SDP; a data channel opens ([`LinkOpened`]) and carries bytes
//! ([`WebRtcLinks::send`], [`LinkData`]) — where a game sends its Opus frames. On [`PeerLeft`]
//! the link closes ([`LinkClosed`]). Attempts are paced (at most `max_in_flight` at once,
//! `stagger` apart, as the original client did with 3 and 250 ms), a stuck attempt times out,
//! every outcome is reported to the server (`ConnectionReport`), and a failure asks for a
//! `RequestPeerRefresh`, as the original client did.
//!
//! All links share one UDP socket; str0m tells which link a datagram belongs to. Candidates
//! (host, server-reflexive, relayed) come from [`super::ice`], which also wraps relayed
//! traffic; candidates found after an offer or answer trickle to the peer as `C` signals.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::app::{App, Plugin, Startup, Update};
use bevy::log::{debug, trace, warn};
use bevy::prelude::{
    Commands, IntoScheduleConfigs, Message, MessageReader, MessageWriter, Res, ResMut, Resource,
    Time, resource_exists,
};
use bevy::time::Real;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, CandidateKind, Event, IceConnectionState, Input, Output, Rtc};

use super::ice::{IceGatherer, Incoming, RelayCounts, kind_name, sdp_candidates};
use super::{MingleClient, MingleIceServers, MingleWelcome, PeerEntered, PeerLeft, SignalReceived};
use crate::protocol::{ConnectionOutcome, PeerId};

/// How links are made.
#[derive(Debug, Clone, Resource)]
pub struct WebRtcConfig {
    /// Attempts in flight at once. Default: 3.
    pub max_in_flight: usize,
    /// Time between starting two attempts. Default: 250 ms.
    pub stagger: Duration,
    /// An attempt not connected by then is abandoned and reported as timed out. Default: 10 s.
    pub attempt_timeout: Duration,
    /// Local UDP address for all links. Default: `0.0.0.0:0`.
    pub bind: SocketAddr,
    /// The address advertised as host candidate when `bind` is unspecified (0.0.0.0).
    /// Default: 127.0.0.1. Behind NAT a game also needs STUN/TURN (see the README).
    pub host_ip: IpAddr,
    /// With `bind` unspecified, also advertise every up IPv4 interface as a host candidate.
    /// Default: true.
    pub interfaces: bool,
    /// Offer only relayed (TURN) candidates, like WebRTC's `iceTransportPolicy: "relay"`: the
    /// peer never learns this client's addresses. Default: false.
    pub relay_only: bool,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            max_in_flight: 3,
            stagger: Duration::from_millis(250),
            attempt_timeout: Duration::from_secs(10),
            bind: SocketAddr::from(([0, 0, 0, 0], 0)),
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            interfaces: true,
            relay_only: false,
        }
    }
}

/// A link to `0` opened: its data channel can carry bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct LinkOpened(pub PeerId);

/// The link to `0` closed (the peer left, or the link failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct LinkClosed(pub PeerId);

/// The attempt to link to `peer` ended without a link (also reported to the server); no
/// retry follows unless the peer is introduced again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
pub struct LinkFailed {
    /// The peer.
    pub peer: PeerId,
    /// `Failed` or `TimedOut`.
    pub outcome: ConnectionOutcome,
}

/// The candidate pair a link's data travels on, with the ICE type names (`host`, `srflx`,
/// `prflx`, `relay`). From this side the local type only tells `relay` from the rest
/// (`host` here covers a server-reflexive base); the peer's `remote` names it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectedPair {
    /// Our address the data leaves from (a relayed address for `relay`).
    pub local: SocketAddr,
    /// `relay` or `host`.
    pub local_kind: &'static str,
    /// The peer's address we send to.
    pub remote: SocketAddr,
    /// The type of the peer's candidate at that address, as the peer advertised it
    /// (`prflx` if it never did).
    pub remote_kind: &'static str,
}

/// Bytes from a peer's data channel.
#[derive(Debug, Clone, PartialEq, Eq, Message)]
pub struct LinkData {
    /// The sender.
    pub from: PeerId,
    /// What it sent.
    pub data: Vec<u8>,
}

/// An Opus frame from a peer's audio track (feature `voice` negotiates the track).
#[derive(Debug, Clone, PartialEq, Eq, Message)]
pub struct LinkAudio {
    /// The sender.
    pub from: PeerId,
    /// RTP timestamp, extended to 64 bits (48 kHz clock).
    pub rtp_time: u64,
    /// The Opus packet.
    pub data: Arc<[u8]>,
}

/// Decides whether an inbound datagram (from, bytes) reaches the links: false drops it.
/// For tests and lab conditions (simulated loss); see [`WebRtcLinks::set_inbound_filter`].
pub type InboundFilter = Box<dyn FnMut(SocketAddr, &[u8]) -> bool + Send + Sync>;

/// Opus's payload type on every link's audio track.
pub const OPUS_PT: u8 = 111;

/// One peer connection.
struct Link {
    rtc: Rtc,
    started: Instant,
    pending: Option<SdpPendingOffer>,
    channel: Option<ChannelId>,
    open: bool,
    remote_candidates: Vec<Candidate>,
    path: Option<(SocketAddr, SocketAddr)>,
    /// Addresses the peer's ICE checks came from (a few).
    heard: Vec<SocketAddr>,
    audio: Option<Mid>,
    /// When str0m wants time again (its `Output::Timeout`); before that, a link that got no
    /// input is not polled.
    next_timeout: Instant,
    /// Input was given (a datagram, data or audio to send) since the last poll.
    touched: bool,
}

/// Every link, the shared socket, and the queue of attempts to start.
#[derive(Resource)]
pub struct WebRtcLinks {
    socket: UdpSocket,
    host: SocketAddr,
    links: BTreeMap<PeerId, Link>,
    waiting: VecDeque<PeerId>,
    last_start: Option<Instant>,
    buf: Vec<u8>,
    ice: IceGatherer,
    ice_generation: u64,
    relay_only: bool,
    inbound_filter: Option<InboundFilter>,
    /// This frame's time (`Time<Real>`'s last update): every input is stamped with it.
    now: Instant,
}

impl WebRtcLinks {
    /// Sends bytes on the data channel to `peer` (binary, reliable). Returns whether the link
    /// is open and took them.
    pub fn send(&mut self, peer: PeerId, data: &[u8]) -> bool {
        let Some(link) = self.links.get_mut(&peer) else {
            return false;
        };
        let Some(id) = link.channel else { return false };
        link.touched = true;
        match link.rtc.channel(id) {
            Some(mut channel) => channel.write(true, data).unwrap_or(false),
            None => false,
        }
    }

    /// Whether the link to `peer` is open.
    pub fn is_open(&self, peer: PeerId) -> bool {
        self.links.get(&peer).is_some_and(|l| l.open)
    }

    /// Peers with an open link.
    pub fn open_links(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.links.iter().filter(|(_, l)| l.open).map(|(p, _)| *p)
    }

    /// The local UDP address of the links.
    pub fn local_addr(&self) -> SocketAddr {
        self.host
    }

    /// Every local ICE candidate gathered so far.
    pub fn local_candidates(&self) -> &[Candidate] {
        self.ice.candidates()
    }

    /// Payload bytes that went through TURN relays.
    pub fn relay_counts(&self) -> RelayCounts {
        self.ice.relay_counts()
    }

    /// The candidate pair the open link to `peer` carries its data on.
    pub fn selected_pair(&self, peer: PeerId) -> Option<SelectedPair> {
        let link = self.links.get(&peer)?;
        let (local, remote) = link.path?;
        let remote_kind = link
            .remote_candidates
            .iter()
            .find(|c| c.addr() == remote)
            .map_or("prflx", |c| kind_name(c.kind()));
        let local_kind = if self.ice.is_relayed(local) {
            "relay"
        } else {
            "host"
        };
        Some(SelectedPair {
            local,
            local_kind,
            remote,
            remote_kind,
        })
    }

    /// Sends one Opus frame on the audio track to `peer`, stamped `rtp_time` (48 kHz clock).
    /// Returns whether the link is connected and has an audio track.
    pub fn send_audio(&mut self, peer: PeerId, rtp_time: u64, data: &[u8]) -> bool {
        let Some(link) = self.links.get_mut(&peer) else {
            return false;
        };
        let Some(mid) = link.audio.filter(|_| link.open) else {
            return false;
        };
        let Some(writer) = link.rtc.writer(mid) else {
            return false;
        };
        let time = MediaTime::new(rtp_time, Frequency::FORTY_EIGHT_KHZ);
        let sent = writer
            .write(Pt::from(OPUS_PT), self.now, time, data)
            .is_ok();
        link.touched = true;
        sent
    }

    /// Installs (or removes, with `None`) a filter every inbound datagram passes before any
    /// link sees it: tests drop a share of them to simulate a lossy path.
    pub fn set_inbound_filter(&mut self, filter: Option<InboundFilter>) {
        self.inbound_filter = filter;
    }

    fn new_rtc(&self) -> Rtc {
        // Audio frames go out as they arrive, reordering is the voice jitter buffer's job
        // (str0m would otherwise hold frames back behind a lost one).
        let mut rtc = Rtc::builder().set_reordering_size_audio(0).build(self.now);
        for c in self.ice.candidates() {
            if !self.relay_only || c.kind() == CandidateKind::Relayed {
                rtc.add_local_candidate(c.clone());
            }
        }
        rtc
    }

    fn new_link(
        &self,
        rtc: Rtc,
        pending: Option<SdpPendingOffer>,
        channel: Option<ChannelId>,
        audio: Option<Mid>,
    ) -> Link {
        Link {
            rtc,
            started: self.now,
            pending,
            channel,
            open: false,
            remote_candidates: Vec::new(),
            path: None,
            heard: Vec::new(),
            audio,
            next_timeout: self.now,
            touched: true,
        }
    }
}

/// Adds WebRTC links to a game using [`MingleClientPlugin`](super::MingleClientPlugin).
#[derive(Default)]
pub struct MingleWebRtcPlugin {
    /// How links are made.
    pub config: WebRtcConfig,
}

impl Plugin for MingleWebRtcPlugin {
    /// Adds the systems; the links' socket is bound at `Startup`.
    fn build(&self, app: &mut App) {
        app.insert_resource(self.config.clone())
            .add_systems(Startup, open_links)
            .add_message::<LinkOpened>()
            .add_message::<LinkClosed>()
            .add_message::<LinkData>()
            .add_message::<LinkFailed>()
            .add_message::<LinkAudio>()
            .add_systems(
                Update,
                (
                    advance_clock,
                    apply_ice_servers,
                    follow_peers,
                    answer_signals,
                    start_attempts,
                    drive_links,
                    trickle_candidates,
                )
                    .chain()
                    .run_if(resource_exists::<WebRtcLinks>),
            );
    }
}

/// Binds the links' socket (a startup system: the plugin does no I/O when added). Without a
/// socket there are no links, and the error is logged.
fn open_links(mut commands: Commands, config: Res<WebRtcConfig>) {
    str0m::crypto::from_feature_flags().install_process_default();
    let bound = UdpSocket::bind(config.bind).and_then(|socket| {
        socket.set_nonblocking(true)?;
        let host = socket.local_addr()?;
        Ok((socket, host))
    });
    let (socket, mut host) = match bound {
        Ok(bound) => bound,
        Err(e) => {
            bevy::log::error!(
                "mingle webrtc: cannot bind UDP {}: {e}; no links",
                config.bind
            );
            return;
        }
    };
    let ice = IceGatherer::new(host, config.host_ip, config.interfaces);
    if host.ip().is_unspecified() {
        host.set_ip(config.host_ip);
    }
    commands.insert_resource(WebRtcLinks {
        socket,
        host,
        links: BTreeMap::new(),
        waiting: VecDeque::new(),
        last_start: None,
        buf: vec![0; 2000],
        ice,
        ice_generation: 0,
        relay_only: config.relay_only,
        inbound_filter: None,
        now: Instant::now(),
    });
}

/// Stamps this frame's time on the links: every input of the frame is given the same instant.
fn advance_clock(mut links: ResMut<WebRtcLinks>, time: Res<Time<Real>>) {
    let now = time.last_update().unwrap_or_else(Instant::now);
    // Monotonic for str0m, whatever the app's clock does.
    links.now = links.now.max(now);
}

const OFFER: u8 = b'O';
const ANSWER: u8 = b'A';
const CANDIDATE: u8 = b'C';

/// Starts gathering with the servers mingle gave (again when they are renewed).
fn apply_ice_servers(mut links: ResMut<WebRtcLinks>, servers: Option<Res<MingleIceServers>>) {
    let Some(servers) = servers else { return };
    if servers.generation != links.ice_generation {
        links.ice_generation = servers.generation;
        let now = links.now;
        links.ice.configure(&servers.servers, now);
    }
}

/// Adds newly gathered candidates to every link and trickles them to its peer.
fn trickle_candidates(mut links: ResMut<WebRtcLinks>, mut mingle: MingleClient) {
    let links = &mut *links;
    for c in links.ice.take_fresh() {
        if links.relay_only && c.kind() != CandidateKind::Relayed {
            continue;
        }
        let mut payload = vec![CANDIDATE];
        payload.extend_from_slice(c.to_sdp_string().as_bytes());
        for (peer, link) in links.links.iter_mut() {
            link.rtc.add_local_candidate(c.clone());
            link.touched = true;
            let _ = mingle.send_signal(*peer, payload.clone());
        }
    }
}

/// Queues an offer to each newcomer we should call; closes links to peers that left.
fn follow_peers(
    mut links: ResMut<WebRtcLinks>,
    session: Option<Res<MingleWelcome>>,
    mut entered: MessageReader<PeerEntered>,
    mut left: MessageReader<PeerLeft>,
    mut closed: MessageWriter<LinkClosed>,
) {
    let me = session.map(|s| s.you);
    for PeerEntered(peer) in entered.read() {
        // The lower id offers: both sides agree without talking.
        if me.is_some_and(|me| me < *peer)
            && !links.links.contains_key(peer)
            && !links.waiting.contains(peer)
        {
            links.waiting.push_back(*peer);
        }
    }
    for PeerLeft(peer) in left.read() {
        links.waiting.retain(|p| p != peer);
        if let Some(mut link) = links.links.remove(peer) {
            link.rtc.disconnect();
            closed.write(LinkClosed(*peer));
        }
    }
}

/// Answers offers and applies answers arriving through mingle's relay.
fn answer_signals(
    mut links: ResMut<WebRtcLinks>,
    mut signals: MessageReader<SignalReceived>,
    mut mingle: MingleClient,
) {
    for signal in signals.read() {
        let (kind, sdp) = match signal.payload.split_first() {
            Some((k, rest)) => (*k, String::from_utf8_lossy(rest).into_owned()),
            None => continue,
        };
        match kind {
            OFFER => {
                let Ok(offer) = SdpOffer::from_sdp_string(&sdp) else {
                    warn!("mingle webrtc: unreadable offer from {}", signal.from);
                    continue;
                };
                let mut rtc = links.new_rtc();
                match rtc.sdp_api().accept_offer(offer) {
                    Ok(answer) => {
                        let mut payload = vec![ANSWER];
                        payload.extend_from_slice(answer.to_sdp_string().as_bytes());
                        let _ = mingle.send_signal(signal.from, payload);
                        let mut link = links.new_link(rtc, None, None, None);
                        link.remote_candidates = sdp_candidates(&sdp);
                        links.links.insert(signal.from, link);
                    }
                    Err(e) => {
                        warn!("mingle webrtc: cannot answer {}: {e}", signal.from);
                        let _ = mingle.report_connection(signal.from, ConnectionOutcome::Failed);
                    }
                }
            }
            ANSWER => {
                let Ok(answer) = SdpAnswer::from_sdp_string(&sdp) else {
                    continue;
                };
                let Some(link) = links.links.get_mut(&signal.from) else {
                    continue;
                };
                link.remote_candidates.extend(sdp_candidates(&sdp));
                link.touched = true;
                if let Some(pending) = link.pending.take()
                    && let Err(e) = link.rtc.sdp_api().accept_answer(pending, answer)
                {
                    warn!("mingle webrtc: bad answer from {}: {e}", signal.from);
                }
            }
            CANDIDATE => {
                let Some(link) = links.links.get_mut(&signal.from) else {
                    continue;
                };
                if let Ok(c) = Candidate::from_sdp_string(&sdp) {
                    link.touched = true;
                    link.remote_candidates.push(c.clone());
                    link.rtc.add_remote_candidate(c);
                }
            }
            _ => debug!("mingle webrtc: unknown signal from {}", signal.from),
        }
    }
}

/// Starts queued offers: at most `max_in_flight` unconnected links, `stagger` apart.
fn start_attempts(
    mut links: ResMut<WebRtcLinks>,
    config: Res<WebRtcConfig>,
    mut mingle: MingleClient,
) {
    let in_flight = links.links.values().filter(|l| !l.open).count();
    if in_flight >= config.max_in_flight
        || links
            .last_start
            .is_some_and(|t| links.now.saturating_duration_since(t) < config.stagger)
    {
        return;
    }
    let Some(peer) = links.waiting.pop_front() else {
        return;
    };
    let mut rtc = links.new_rtc();
    let mut change = rtc.sdp_api();
    let channel = change.add_channel("mingle".into());
    // The offerer learns its audio track's mid here; the answerer from `MediaAdded`.
    #[cfg(feature = "voice")]
    let audio = Some(change.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::SendRecv,
        None,
        None,
        None,
    ));
    #[cfg(not(feature = "voice"))]
    let audio = None;
    let Some((offer, pending)) = change.apply() else {
        return;
    };
    let mut payload = vec![OFFER];
    payload.extend_from_slice(offer.to_sdp_string().as_bytes());
    if mingle.send_signal(peer, payload).is_err() {
        links.waiting.push_front(peer);
        return;
    }
    links.last_start = Some(links.now);
    let link = links.new_link(rtc, Some(pending), Some(channel), audio);
    links.links.insert(peer, link);
}

/// Feeds datagrams and time to every link, writes what they transmit, and turns their events
/// into messages and connection reports.
fn drive_links(
    mut links: ResMut<WebRtcLinks>,
    config: Res<WebRtcConfig>,
    mut mingle: MingleClient,
    mut opened: MessageWriter<LinkOpened>,
    mut closed: MessageWriter<LinkClosed>,
    mut data: MessageWriter<LinkData>,
    mut failed: MessageWriter<LinkFailed>,
    mut audio: MessageWriter<LinkAudio>,
) {
    let links = &mut *links;
    // Until WouldBlock: the socket is drained.
    while let Ok((n, source)) = links.socket.recv_from(&mut links.buf) {
        if let Some(filter) = &mut links.inbound_filter
            && !filter(source, &links.buf[..n])
        {
            continue;
        }
        let (source, destination, bytes) =
            match links
                .ice
                .handle_datagram(source, &links.buf[..n], links.now)
            {
                Incoming::Consumed => continue,
                Incoming::Direct { destination } => (source, destination, links.buf[..n].to_vec()),
                Incoming::Relayed {
                    peer,
                    relayed,
                    data,
                } => (peer, relayed, data),
            };
        if bytes.first().is_some_and(|b| (20..=63).contains(b)) {
            trace!(
                "mingle webrtc: dtls in {source} -> {destination}, {} bytes",
                bytes.len()
            );
        }
        let Ok(contents) = bytes.as_slice().try_into() else {
            debug!("mingle webrtc: unreadable datagram from {source}");
            continue;
        };
        let input = Input::Receive(
            links.now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        // str0m takes DTLS only from a pair that already succeeded on its side. The peer's
        // pair can succeed first (through a NAT that only now opened), and its first DTLS
        // flight would be lost, costing a 1 s retransmission: give it to the link whose
        // peer's ICE checks came from that address.
        let stun = bytes.first().is_some_and(|b| *b < 4);
        let link = match links.links.values().position(|l| l.rtc.accepts(&input)) {
            Some(i) => links.links.values_mut().nth(i),
            None if !stun => links.links.values_mut().find(|l| l.heard.contains(&source)),
            None => None,
        };
        if let Some(link) = link {
            if stun && !link.heard.contains(&source) && link.heard.len() < 16 {
                link.heard.push(source);
            }
            link.touched = true;
            if let Err(e) = link.rtc.handle_input(input) {
                debug!("mingle webrtc: input from {source} refused: {e}");
            }
        } else {
            debug!("mingle webrtc: no link accepts a datagram from {source}");
        }
    }
    let now = links.now;
    let mut ended: Vec<(PeerId, Option<ConnectionOutcome>)> = Vec::new();
    for (&peer, link) in links.links.iter_mut() {
        if !link.open && now.saturating_duration_since(link.started) > config.attempt_timeout {
            ended.push((peer, Some(ConnectionOutcome::TimedOut)));
            continue;
        }
        // str0m is driven by its own timeouts: a link with no input and no timer due is left
        // alone this frame.
        if !std::mem::take(&mut link.touched) && now < link.next_timeout {
            continue;
        }
        if link.rtc.handle_input(Input::Timeout(now)).is_err() {
            ended.push((peer, Some(ConnectionOutcome::Failed)));
            continue;
        }
        loop {
            match link.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    // DTLS (first byte 20..=63) travels only on the nominated pair.
                    if t.contents.first().is_some_and(|b| (20..=63).contains(b)) {
                        link.path = Some((t.source, t.destination));
                        trace!(
                            "mingle webrtc: dtls out {} -> {}, {} bytes",
                            t.source,
                            t.destination,
                            t.contents.len()
                        );
                    }
                    if links.ice.is_relayed(t.source) {
                        links
                            .ice
                            .send_relayed(t.source, t.destination, &t.contents, now);
                    } else {
                        let _ = links.socket.send_to(&t.contents, t.destination);
                    }
                }
                Ok(Output::Timeout(at)) => {
                    link.next_timeout = at;
                    break;
                }
                Ok(Output::Event(Event::ChannelOpen(id, _))) => {
                    link.channel = Some(id);
                    link.open = true;
                    opened.write(LinkOpened(peer));
                    let _ = mingle.report_connection(peer, ConnectionOutcome::Connected);
                }
                Ok(Output::Event(Event::ChannelData(d))) => {
                    data.write(LinkData {
                        from: peer,
                        data: d.data,
                    });
                }
                Ok(Output::Event(Event::MediaAdded(m))) => link.audio = Some(m.mid),
                Ok(Output::Event(Event::MediaData(m))) => {
                    audio.write(LinkAudio {
                        from: peer,
                        rtp_time: m.time.numer(),
                        data: m.data,
                    });
                }
                Ok(Output::Event(Event::ChannelClose(_))) => {
                    ended.push((peer, None));
                }
                Ok(Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                ))) => {
                    let outcome = (!link.open).then_some(ConnectionOutcome::Failed);
                    ended.push((peer, outcome));
                }
                Ok(_) => {}
                Err(e) => {
                    debug!("mingle webrtc: link to {peer} failed: {e}");
                    ended.push((peer, (!link.open).then_some(ConnectionOutcome::Failed)));
                    break;
                }
            }
        }
    }
    links.ice.poll(now);
    for (to, bytes) in links.ice.drain_transmits() {
        let _ = links.socket.send_to(&bytes, to);
    }
    for (peer, outcome) in ended {
        let Some(mut link) = links.links.remove(&peer) else {
            continue;
        };
        link.rtc.disconnect();
        if link.open {
            closed.write(LinkClosed(peer));
        }
        if let Some(outcome) = outcome {
            failed.write(LinkFailed { peer, outcome });
            let _ = mingle.report_connection(peer, outcome);
            // As the original client did: after a failure, re-sync the peer set.
            let _ = mingle.request_refresh();
        }
    }
}

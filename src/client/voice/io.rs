//! Audio in and out, behind one trait: buffers and WAV files here, devices in `devices`.
//!
//! The voice plugin pulls one microphone frame and pushes one stereo frame every 20 ms of
//! its clock. [`BufferAudio`] serves tests, bots and examples: a queue of samples as the
//! microphone (silence once empty) and a recording of everything played; it is a cheap shared
//! handle, so a test keeps a clone to feed and read it while the plugin owns another.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use super::codec::{FRAME_SAMPLES, SAMPLE_RATE};
use super::error::VoiceError;

/// Where the voice plugin takes the microphone from and sends the mix to.
pub trait AudioIo: Send + Sync + 'static {
    /// Fills `frame` ([`FRAME_SAMPLES`] mono samples at 48 kHz, -1.0..=1.0) with the next
    /// microphone frame. Returns false (and fills silence) when there is none.
    fn capture(&mut self, frame: &mut [f32]) -> bool;
    /// Plays the next 20 ms: [`FRAME_SAMPLES`] × 2 interleaved stereo samples, left first.
    fn play(&mut self, stereo: &[f32]);
}

#[derive(Debug, Default)]
struct Buffers {
    mic: VecDeque<f32>,
    captured_frames: u64,
    played: Vec<f32>,
    record: bool,
}

/// Microphone and speakers made of memory: a shared handle (clones see the same buffers).
#[derive(Debug, Clone, Default)]
pub struct BufferAudio {
    inner: Arc<Mutex<Buffers>>,
}

impl BufferAudio {
    /// An empty microphone that records what is played.
    pub fn new() -> Self {
        let audio = BufferAudio::default();
        audio.lock().record = true;
        audio
    }

    fn lock(&self) -> MutexGuard<'_, Buffers> {
        // A panic while holding the lock leaves plain sample buffers, still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues samples (48 kHz mono) to be captured after those already queued. Returns the
    /// index of the frame their first sample will be captured in (frames count from the
    /// plugin's first, silence included), if the queue was empty before.
    pub fn push_mic(&self, samples: &[f32]) -> u64 {
        let mut b = self.lock();
        let queued = b.mic.len() as u64;
        b.mic.extend(samples.iter().map(|s| s.clamp(-1.0, 1.0)));
        b.captured_frames + queued.div_ceil(FRAME_SAMPLES as u64)
    }

    /// Samples still waiting in the microphone queue.
    pub fn mic_queued(&self) -> usize {
        self.lock().mic.len()
    }

    /// Frames captured so far (silent ones included).
    pub fn captured_frames(&self) -> u64 {
        self.lock().captured_frames
    }

    /// Everything played so far, interleaved stereo.
    pub fn played(&self) -> Vec<f32> {
        self.lock().played.clone()
    }

    /// Stereo frames played so far.
    pub fn played_frames(&self) -> usize {
        self.lock().played.len() / (FRAME_SAMPLES * 2)
    }

    /// Stops (false) or resumes (true) keeping what is played.
    pub fn set_recording(&self, record: bool) {
        self.lock().record = record;
    }

    /// Queues a 48 kHz mono WAV file (16-bit or float) as microphone input.
    ///
    /// # Errors
    /// [`VoiceError::Wav`] if it cannot be read, [`VoiceError::WavFormat`] if it is not
    /// 48 kHz mono.
    pub fn push_mic_wav(&self, path: impl AsRef<Path>) -> Result<u64, VoiceError> {
        let samples = read_wav_mono(path)?;
        Ok(self.push_mic(&samples))
    }

    /// Writes what was played as a 48 kHz stereo 16-bit WAV file.
    ///
    /// # Errors
    /// [`VoiceError::Wav`] if it cannot be written.
    pub fn write_played_wav(&self, path: impl AsRef<Path>) -> Result<(), VoiceError> {
        write_wav(path, 2, &self.lock().played)
    }
}

impl AudioIo for BufferAudio {
    fn capture(&mut self, frame: &mut [f32]) -> bool {
        let mut b = self.lock();
        b.captured_frames += 1;
        let n = frame.len().min(b.mic.len());
        for (out, s) in frame.iter_mut().zip(b.mic.drain(..n)) {
            *out = s;
        }
        frame[n..].fill(0.0);
        n > 0
    }

    fn play(&mut self, stereo: &[f32]) {
        let mut b = self.lock();
        if b.record {
            b.played.extend_from_slice(stereo);
        }
    }
}

/// Reads a 48 kHz mono WAV file as samples in -1.0..=1.0.
///
/// # Errors
/// [`VoiceError::Wav`] if it cannot be read, [`VoiceError::WavFormat`] if it is not 48 kHz
/// mono.
pub fn read_wav_mono(path: impl AsRef<Path>) -> Result<Vec<f32>, VoiceError> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    if spec.sample_rate != SAMPLE_RATE || spec.channels != 1 {
        return Err(VoiceError::WavFormat(format!(
            "{} Hz, {} channels; the microphone takes {SAMPLE_RATE} Hz mono",
            spec.sample_rate, spec.channels
        )));
    }
    match spec.sample_format {
        hound::SampleFormat::Float => Ok(reader.samples::<f32>().collect::<Result<_, _>>()?),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            Ok(reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()?)
        }
    }
}

/// Writes interleaved samples as a 48 kHz 16-bit WAV file with `channels` channels.
///
/// # Errors
/// [`VoiceError::Wav`] if it cannot be written.
pub fn write_wav(path: impl AsRef<Path>, channels: u16, samples: &[f32]) -> Result<(), VoiceError> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)?;
    }
    writer.finalize()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_microphone_plays_its_queue_then_silence() {
        let audio = BufferAudio::new();
        let mut io: Box<dyn AudioIo> = Box::new(audio.clone());
        let mut frame = vec![9.0; FRAME_SAMPLES];
        assert!(!io.capture(&mut frame));
        assert_eq!(audio.push_mic(&vec![0.5; FRAME_SAMPLES + 10]), 1);
        assert!(io.capture(&mut frame));
        assert!(frame.iter().all(|&s| s == 0.5));
        assert!(io.capture(&mut frame));
        assert_eq!(frame[9], 0.5);
        assert_eq!(frame[10], 0.0);
        assert!(!io.capture(&mut frame));
        assert_eq!(audio.captured_frames(), 4);
    }

    #[test]
    fn what_is_played_is_recorded_and_written_to_wav() {
        let audio = BufferAudio::new();
        let mut io = audio.clone();
        io.play(&vec![0.25; FRAME_SAMPLES * 2]);
        assert_eq!(audio.played_frames(), 1);
        let dir = std::env::temp_dir().join(format!("mingle-voice-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stereo = dir.join("out.wav");
        audio.write_played_wav(&stereo).unwrap();
        let reader = hound::WavReader::open(&stereo).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.len() as usize, FRAME_SAMPLES * 2);
        // Stereo is refused as a microphone; mono round-trips.
        assert!(matches!(
            read_wav_mono(&stereo),
            Err(VoiceError::WavFormat(_))
        ));
        let mono = dir.join("mic.wav");
        write_wav(&mono, 1, &[0.5, -0.5]).unwrap();
        let back = read_wav_mono(&mono).unwrap();
        assert!((back[0] - 0.5).abs() < 1e-3 && (back[1] + 0.5).abs() < 1e-3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

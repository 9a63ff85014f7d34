//! Real audio devices (feature `voice-devices`): the default microphone and speakers via cpal.
//!
//! cpal streams live on a thread of their own (a stream cannot move between threads on every
//! platform); they meet the voice plugin in two queues. The microphone queue keeps at most
//! 200 ms (older audio is dropped, so latency cannot build up); the speaker queue likewise,
//! and an empty speaker queue plays silence.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::codec::{FRAME_SAMPLES, SAMPLE_RATE};
use super::error::VoiceError;
use super::io::AudioIo;

/// Most audio either queue holds: 200 ms.
const MAX_QUEUED_FRAMES: usize = 10;

type Queue = Arc<Mutex<VecDeque<f32>>>;

fn lock(q: &Queue) -> std::sync::MutexGuard<'_, VecDeque<f32>> {
    q.lock().unwrap_or_else(|e| e.into_inner())
}

/// The default input and output devices, at 48 kHz.
pub struct DeviceAudio {
    mic: Queue,
    speakers: Queue,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DeviceAudio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAudio").finish_non_exhaustive()
    }
}

impl DeviceAudio {
    /// Opens the default microphone and speakers at 48 kHz (f32 samples) and starts them.
    ///
    /// # Errors
    /// [`VoiceError::Device`] if there is no such device, it refuses 48 kHz f32, or its
    /// stream cannot start (a machine without a sound card gets this).
    pub fn open() -> Result<Self, VoiceError> {
        let mic: Queue = Arc::default();
        let speakers: Queue = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let (mic, speakers, stop) = (mic.clone(), speakers.clone(), stop.clone());
            std::thread::Builder::new()
                .name("mingle-voice-devices".into())
                .spawn(move || match start_streams(mic, speakers) {
                    Ok(streams) => {
                        let _ = ready_tx.send(Ok(()));
                        while !stop.load(Ordering::Acquire) {
                            std::thread::park();
                        }
                        drop(streams);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                })
                .map_err(|e| VoiceError::Device(format!("cannot spawn its thread: {e}")))?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(DeviceAudio {
                mic,
                speakers,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(VoiceError::Device("its thread ended early".into())),
        }
    }
}

impl Drop for DeviceAudio {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn device_error(what: &str) -> impl Fn(String) -> VoiceError + '_ {
    move |e| VoiceError::Device(format!("{what}: {e}"))
}

fn config_48k(
    configs: impl Iterator<Item = cpal::SupportedStreamConfigRange>,
) -> Option<cpal::StreamConfig> {
    configs
        .filter(|c| c.sample_format() == cpal::SampleFormat::F32)
        .filter(|c| c.min_sample_rate().0 <= SAMPLE_RATE && SAMPLE_RATE <= c.max_sample_rate().0)
        .min_by_key(|c| c.channels())
        .map(|c| c.with_sample_rate(cpal::SampleRate(SAMPLE_RATE)).config())
}

fn start_streams(mic: Queue, speakers: Queue) -> Result<(cpal::Stream, cpal::Stream), VoiceError> {
    let host = cpal::default_host();
    let input = host
        .default_input_device()
        .ok_or_else(|| VoiceError::Device("no default input device".into()))?;
    let output = host
        .default_output_device()
        .ok_or_else(|| VoiceError::Device("no default output device".into()))?;
    let in_config = input
        .supported_input_configs()
        .map_err(|e| device_error("input configs")(e.to_string()))
        .and_then(|c| {
            config_48k(c).ok_or_else(|| VoiceError::Device("input: no 48 kHz f32 mode".into()))
        })?;
    let out_config = output
        .supported_output_configs()
        .map_err(|e| device_error("output configs")(e.to_string()))
        .and_then(|c| {
            config_48k(c.filter(|c| c.channels() >= 2))
                .ok_or_else(|| VoiceError::Device("output: no 48 kHz f32 stereo mode".into()))
        })?;
    let in_channels = usize::from(in_config.channels.max(1));
    let out_channels = usize::from(out_config.channels.max(2));
    let max = FRAME_SAMPLES * MAX_QUEUED_FRAMES;
    let in_stream = input
        .build_input_stream(
            &in_config,
            move |data: &[f32], _: &cpal::InputCallbackInfo| {
                let mut q = lock(&mic);
                // Mono: the average of the device's channels.
                q.extend(
                    data.chunks(in_channels)
                        .map(|f| f.iter().sum::<f32>() / f.len() as f32),
                );
                let excess = q.len().saturating_sub(max);
                q.drain(..excess);
            },
            |e| bevy::log::warn!("mingle voice: microphone: {e}"),
            None,
        )
        .map_err(|e| device_error("input stream")(e.to_string()))?;
    let out_stream = output
        .build_output_stream(
            &out_config,
            move |data: &mut [f32], _: &cpal::OutputCallbackInfo| {
                let mut q = lock(&speakers);
                for frame in data.chunks_mut(out_channels) {
                    let l = q.pop_front().unwrap_or(0.0);
                    let r = q.pop_front().unwrap_or(0.0);
                    frame.fill(0.0);
                    frame[0] = l;
                    if let Some(right) = frame.get_mut(1) {
                        *right = r;
                    }
                }
            },
            |e| bevy::log::warn!("mingle voice: speakers: {e}"),
            None,
        )
        .map_err(|e| device_error("output stream")(e.to_string()))?;
    in_stream
        .play()
        .map_err(|e| device_error("input start")(e.to_string()))?;
    out_stream
        .play()
        .map_err(|e| device_error("output start")(e.to_string()))?;
    Ok((in_stream, out_stream))
}

impl AudioIo for DeviceAudio {
    fn capture(&mut self, frame: &mut [f32]) -> bool {
        let mut q = lock(&self.mic);
        let n = frame.len();
        if q.len() < n {
            frame.fill(0.0);
            return false;
        }
        for (out, s) in frame.iter_mut().zip(q.drain(..n)) {
            *out = s;
        }
        true
    }

    fn play(&mut self, stereo: &[f32]) {
        let mut q = lock(&self.speakers);
        q.extend(stereo.iter().copied());
        let excess = q
            .len()
            .saturating_sub(FRAME_SAMPLES * 2 * MAX_QUEUED_FRAMES);
        q.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_devices_fails_cleanly_or_works() {
        // CI machines have no sound card: opening must then be an error, not a panic.
        match DeviceAudio::open() {
            Ok(mut audio) => {
                let mut frame = vec![0.0; FRAME_SAMPLES];
                audio.capture(&mut frame);
                audio.play(&vec![0.0; FRAME_SAMPLES * 2]);
            }
            Err(e) => assert!(matches!(e, VoiceError::Device(_)), "{e}"),
        }
    }
}

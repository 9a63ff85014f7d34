//! The voice layer's error.

use std::fmt;

/// What can go wrong in the voice layer.
#[derive(Debug)]
pub enum VoiceError {
    /// libopus refused a setting or failed to encode.
    Opus(opus::Error),
    /// A frame handed to the encoder was not [`FRAME_SAMPLES`](super::FRAME_SAMPLES) long.
    FrameLength(usize),
    /// A WAV file could not be read or written.
    Wav(hound::Error),
    /// A WAV file is not 48 kHz mono (what the microphone buffer takes).
    WavFormat(String),
    /// An audio device could not be opened or started.
    Device(String),
}

impl fmt::Display for VoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VoiceError::Opus(e) => write!(f, "opus: {e}"),
            VoiceError::FrameLength(n) => {
                write!(f, "a frame is {} samples, got {n}", super::FRAME_SAMPLES)
            }
            VoiceError::Wav(e) => write!(f, "wav: {e}"),
            VoiceError::WavFormat(what) => write!(f, "wav: {what}"),
            VoiceError::Device(what) => write!(f, "audio device: {what}"),
        }
    }
}

impl std::error::Error for VoiceError {}

impl From<opus::Error> for VoiceError {
    fn from(e: opus::Error) -> Self {
        VoiceError::Opus(e)
    }
}

impl From<hound::Error> for VoiceError {
    fn from(e: hound::Error) -> Self {
        VoiceError::Wav(e)
    }
}

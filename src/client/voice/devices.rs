//! Real audio devices (feature `voice-devices`).

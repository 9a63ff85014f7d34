//! B stands still; A walks past and away, talking all the time. B's ears are recorded.
//!
//! A real mingle server introduces A and B, their WebRTC link carries A's voice as Opus, B's
//! voice plugin places it in 3D. A walks along z = 2 from x = -18 to x = +30 at 4 units a
//! second: past B (left to right), out of `range` (20: the voice has faded out) and past
//! `leave_range` (25: mingle drops the link). Writes B's output as a WAV file and a PNG plot
//! of B's received level against A's distance, with the configured curve drawn over it; exits
//! non-zero if the level strays from the curve.
//!
//! ```text
//! cargo run --release --features voice --example voice_walk [-- <output dir>]
//! ```
//! Output: `<dir>/voice_walk.wav` and `<dir>/voice_walk.png` (default dir: `target/voice_walk`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bevy::prelude::{App, MinimalPlugins, Transform, TransformPlugin, Vec3, With, default};
use mingle::client::voice::{
    BufferAudio, MingleVoicePlugin, SAMPLE_RATE, SpatialConfig, VoiceAudio, VoiceConfig, VoiceStats,
};
use mingle::client::{
    MingleClientConfig, MingleClientPlugin, MingleLocal, MingleServer, MingleWebRtcPlugin,
    WebRtcLinks,
};
use mingle::protocol::{PeerId, Realm};
use mingle::server::{MingleServerConfig, MingleServerPlugin, ServerAddress};
use plotters::prelude::*;

const RATE: f32 = SAMPLE_RATE as f32;
const START_X: f32 = -18.0;
const END_X: f32 = 30.0;
const SPEED: f32 = 4.0;
const LANE_Z: f32 = 2.0;
const GREEN_DARK: RGBColor = RGBColor(0, 140, 0);

/// A sustained vowel: harmonics of a gently wavering pitch under two formants.
fn vowel(seconds: f32) -> Vec<f32> {
    let n = (seconds * RATE) as usize;
    let mut phase = 0.0f32;
    (0..n)
        .map(|i| {
            let t = i as f32 / RATE;
            let pitch = 140.0 * (1.0 + 0.04 * (2.0 * std::f32::consts::PI * 0.7 * t).sin());
            phase += 2.0 * std::f32::consts::PI * pitch / RATE;
            let mut s = 0.0;
            for h in 1..=20 {
                let f = pitch * h as f32;
                let w = 1.0 / (1.0 + ((f - 650.0) / 120.0).powi(2))
                    + 0.6 / (1.0 + ((f - 1700.0) / 200.0).powi(2))
                    + 0.05;
                s += w * (phase * h as f32).sin();
            }
            0.12 * s
        })
        .collect()
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

fn player(id: u64, server: SocketAddr, at: Vec3, audio: BufferAudio) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, TransformPlugin))
        .add_plugins(
            MingleClientPlugin::new(MingleClientConfig {
                position_hz: 30.0,
                ..default()
            })
            .connect_to(MingleServer::Unsecure {
                server,
                id: PeerId(id),
                realm: Realm(0),
            }),
        )
        .add_plugins(MingleWebRtcPlugin::default())
        .add_plugins(MingleVoicePlugin::default())
        .insert_resource(VoiceAudio::new(audio));
    app.world_mut()
        .spawn((MingleLocal::default(), Transform::from_translation(at)));
    app
}

fn place(app: &mut App, at: Vec3) {
    let world = app.world_mut();
    let mut q = world.query_filtered::<&mut Transform, With<MingleLocal>>();
    q.single_mut(world).expect("one player").translation = at;
}

fn step(apps: &mut [&mut App]) {
    for app in apps.iter_mut() {
        app.update();
    }
    std::thread::sleep(Duration::from_millis(2));
}

fn is_open(app: &App, peer: PeerId) -> bool {
    // The links exist from the first update (their socket is bound at Startup).
    app.world()
        .get_resource::<WebRtcLinks>()
        .is_some_and(|links| links.is_open(peer))
}

/// One 100 ms window of B's output: A's distance then, and B's level (dB re the source).
struct Window {
    distance: f32,
    level_db: f32,
}

fn main() -> ExitCode {
    let out_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/voice_walk".into()),
    );
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("cannot create {}: {e}", out_dir.display());
        return ExitCode::FAILURE;
    }
    let mut server = App::new();
    server
        .add_plugins(MinimalPlugins)
        .add_plugins(MingleServerPlugin::new(MingleServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..default()
        }));
    server.update(); // binds the socket
    let addr = server.world().resource::<ServerAddress>().0;
    let (mic_a, ears_b) = (BufferAudio::new(), BufferAudio::new());
    let start = Vec3::new(START_X, 0.0, LANE_Z);
    let mut a = player(1, addr, start, mic_a.clone());
    let mut b = player(2, addr, Vec3::ZERO, ears_b.clone());

    let deadline = Instant::now() + Duration::from_secs(20);
    while !(is_open(&a, PeerId(2)) && is_open(&b, PeerId(1))) {
        if Instant::now() > deadline {
            eprintln!("the link did not open within 20 s");
            return ExitCode::FAILURE;
        }
        step(&mut [&mut server, &mut a, &mut b]);
    }
    println!("A and B are linked; A starts talking and walking");
    let walk_secs = (END_X - START_X) / SPEED;
    let source = vowel(walk_secs + 3.0);
    let first_frame = mic_a.push_mic(&source);
    let walk_start = Instant::now();
    // A's distance to B over time, for the plot.
    let mut path: Vec<(Instant, f32)> = Vec::new();
    let mut closed_at = None;
    loop {
        let t = walk_start.elapsed().as_secs_f32();
        if t > walk_secs + 1.0 {
            break;
        }
        let x = (START_X + SPEED * t).min(END_X);
        let at = Vec3::new(x, 0.0, LANE_Z);
        place(&mut a, at);
        path.push((Instant::now(), at.length()));
        step(&mut [&mut server, &mut a, &mut b]);
        if closed_at.is_none() && !is_open(&b, PeerId(1)) {
            closed_at = Some(at.length());
            println!("link closed with A {:.1} units away", at.length());
        }
    }

    // Align B's output on A's clock: frame k of B is heard at b0 + (k + 1) × 20 ms.
    let stats_a = a.world().resource::<VoiceStats>().clone();
    let stats_b = b.world().resource::<VoiceStats>().clone();
    let (Some(a0), Some(b0)) = (stats_a.started_at, stats_b.started_at) else {
        eprintln!("voice never started");
        return ExitCode::FAILURE;
    };
    let played = ears_b.played();
    let spoken_at = a0 + Duration::from_millis(20 * first_frame);
    let source_rms = rms(&source);
    let window = (0.1 * RATE) as usize;
    let mut windows = Vec::new();
    for (k, chunk) in played.chunks_exact(window * 2).enumerate() {
        let heard_at = b0 + Duration::from_millis(20) + Duration::from_secs_f32(k as f32 * 0.1);
        // Mouth to ear is about 50 ms: the window was spoken that much earlier.
        let Some(said) = heard_at.checked_sub(Duration::from_millis(50)) else {
            continue;
        };
        if said < spoken_at.max(walk_start) {
            continue;
        }
        let Some(&(_, distance)) = path.iter().rev().find(|(t, _)| *t <= said) else {
            continue;
        };
        let power = (chunk.iter().map(|s| s * s).sum::<f32>() / window as f32).sqrt();
        if power > 0.0 {
            windows.push(Window {
                distance,
                level_db: 20.0 * (power / source_rms).log10(),
            });
        }
    }
    let curve = VoiceConfig::default().spatial;
    let errors: Vec<f32> = windows
        .iter()
        .filter(|w| w.distance < curve.range * 0.9)
        .map(|w| (w.level_db - 20.0 * curve.gain(w.distance).log10()).abs())
        .collect();
    let mean_error = errors.iter().sum::<f32>() / errors.len().max(1) as f32;
    println!(
        "{} windows inside 90 % of range: mean |level - curve| = {mean_error:.2} dB",
        errors.len()
    );

    let wav = out_dir.join("voice_walk.wav");
    let png = out_dir.join("voice_walk.png");
    if let Err(e) = ears_b.write_played_wav(&wav) {
        eprintln!("cannot write {}: {e}", wav.display());
        return ExitCode::FAILURE;
    }
    if let Err(e) = plot(&png, &windows, &curve, closed_at) {
        eprintln!("cannot draw {}: {e}", png.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {} and {}", wav.display(), png.display());
    if errors.len() < 50 || mean_error > 1.5 || closed_at.is_none() {
        eprintln!("B's level does not follow the curve, or the link never closed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Registers a system sans-serif font for the labels; without one the plot has no text.
fn font() -> bool {
    const FONTS: [&str; 2] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ];
    FONTS.iter().any(|path| {
        std::fs::read(path).is_ok_and(|bytes| {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}

fn plot(
    path: &std::path::Path,
    windows: &[Window],
    curve: &SpatialConfig,
    closed_at: Option<f32>,
) -> Result<(), Box<dyn std::error::Error>> {
    let (w, h) = (900u32, 520u32);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let text = font();
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(20);
        if text {
            builder
                .caption(
                    "B's received level as A walks past and away",
                    ("sans-serif", 22),
                )
                .x_label_area_size(45)
                .y_label_area_size(60);
        }
        let mut chart = builder.build_cartesian_2d(0f32..32f32, -50f32..5f32)?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("A's distance to B (world units)")
                .y_desc("level (dB re A's microphone)");
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw()?;
        chart
            .draw_series(
                windows
                    .iter()
                    .map(|w| Circle::new((w.distance, w.level_db), 3, BLUE.filled())),
            )?
            .label("measured (100 ms windows)")
            .legend(|(x, y)| Circle::new((x + 10, y), 3, BLUE.filled()));
        let steps = 400;
        chart
            .draw_series(LineSeries::new(
                (0..=steps)
                    .map(|i| 32.0 * i as f32 / steps as f32)
                    .filter(|&d| curve.gain(d) > 0.0)
                    .map(|d| (d, 20.0 * curve.gain(d).log10())),
                RED.stroke_width(2),
            ))?
            .label(format!(
                "curve: {:?}, min {} , range {}",
                curve.falloff, curve.min_distance, curve.range
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        if let Some(d) = closed_at {
            chart
                .draw_series(LineSeries::new(
                    [(d, -50.0), (d, 5.0)],
                    GREEN_DARK.stroke_width(2),
                ))?
                .label(format!("link closed at {d:.1} (leave_range)"))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], GREEN_DARK.stroke_width(2))
                });
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
    }
    let file = std::fs::File::create(path)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(())
}

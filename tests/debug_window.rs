//! The debug window really draws: the server runs with `--debug-window` under Xvfb with two
//! still demo bots at (-10, 0) and (10, 0) and a fixed camera (1 unit = 10 px, origin at the
//! window's centre), writes a screenshot, and the range circle, the leave circle and the pair's
//! line are where those positions put them.

use std::path::PathBuf;
use std::process::Command;

/// The RGB of the pixel at (x, y), y down.
fn pixel(img: &[u8], width: usize, channels: usize, x: usize, y: usize) -> [u8; 3] {
    let i = (y * width + x) * channels;
    [img[i], img[i + 1], img[i + 2]]
}

/// Whether any pixel within `r` of (x, y) is close to `want`.
fn near(
    img: &[u8],
    w: usize,
    ch: usize,
    x: usize,
    y: usize,
    r: usize,
    want: [u8; 3],
    tol: i32,
) -> bool {
    (y.saturating_sub(r)..=y + r).any(|py| {
        (x.saturating_sub(r)..=x + r).any(|px| {
            let got = pixel(img, w, ch, px, py);
            got.iter()
                .zip(want)
                .all(|(g, w)| (*g as i32 - w as i32).abs() <= tol)
        })
    })
}

#[test]
fn the_window_draws_circles_and_pairs_where_the_clients_are() {
    let out: PathBuf =
        std::env::temp_dir().join(format!("mingle-debug-{}.png", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let status = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1024x768x24"])
        .arg(env!("CARGO_BIN_EXE_mingle-server"))
        .args([
            "--bind",
            "127.0.0.1:0",
            "--debug-window",
            "--demo-bots",
            "2",
            "--demo-layout",
            "pair",
        ])
        .arg("--screenshot")
        .arg(&out)
        .args(["--exit-after-frames", "90"])
        .status()
        .expect("xvfb-run runs (CI installs xvfb and mesa-vulkan-drivers)");
    assert!(status.success(), "the windowed server exits 0: {status:?}");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&out).expect("a screenshot"),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut img = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut img).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let ch = info.color_type.samples();
    assert_eq!((w, h), (800, 600));
    let (cx, cy) = (w / 2, h / 2);
    let range_color = {
        let c = mingle::server::space_color(mingle::protocol::SpaceId(0));
        [
            (c.red * 255.0) as u8,
            (c.green * 255.0) as u8,
            (c.blue * 255.0) as u8,
        ]
    };
    let line = [255, 255, 255];
    // The pair's line runs between the bots, through the centre.
    assert!(
        near(&img, w, ch, cx, cy, 3, line, 60),
        "the pair's line at the centre"
    );
    // Bot A at x = -10 (px 300): its range circle (20 units = 200 px) crosses y = 300 at px 100.
    assert!(
        near(&img, w, ch, cx - 300, cy, 3, range_color, 60),
        "A's range circle at x = -30"
    );
    // Bot B at x = 10: its range circle crosses at px 700.
    assert!(
        near(&img, w, ch, cx + 300, cy, 3, range_color, 60),
        "B's range circle at x = 30"
    );
    // Above A at (-10, 20): on A's range circle too.
    assert!(
        near(&img, w, ch, cx - 100, cy - 200, 3, range_color, 60),
        "A's circle at the top"
    );
    // Nothing is drawn far from both (background).
    assert!(
        !near(&img, w, ch, 20, 20, 0, range_color, 30),
        "background stays background"
    );
    let _ = std::fs::remove_file(&out);
}

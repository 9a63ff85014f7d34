//! The debug window (cargo feature `debug-window`): every client as a dot with its `range`
//! circle and a fainter `leave_range` circle, a line for every introduced pair, clients
//! coloured by space, a panel with the counts, the hovered client's details, pan (arrow keys
//! or drag with the right mouse button), zoom (scroll wheel) and a space selector (Tab cycles,
//! A shows all). It reads the same ECS world as the server. A 3D Y-up world is drawn top-down.

use std::path::PathBuf;

use bevy::camera::{OrthographicProjection, Projection};
use bevy::gizmos::config::{DefaultGizmoConfigGroup, GizmoConfigStore};
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::prelude::*;
use bevy::render::view::window::screenshot::{Screenshot, save_to_disk};
use bevy::window::PrimaryWindow;

use super::{
    MinglePeer, MinglePosition, MingleServerConfig, MingleSpace, NearbyPeers, PeerDirectory,
    ServerStats,
};
use crate::kit::{SplitMix64, world_side};
use crate::protocol::{PeerId, Realm, SpaceId};

/// How the demo bots are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DemoLayout {
    /// Bots scattered over a square, walking about.
    #[default]
    Walking,
    /// Two still bots at (-10, 0) and (10, 0), camera fixed at 1 unit = 10 px (for tests).
    Pair,
}

/// Opens the debug window. Add after `DefaultPlugins` (built with the `debug-window` feature)
/// and [`MingleServerPlugin`](super::MingleServerPlugin).
#[derive(Debug, Clone, Default)]
pub struct MingleDebugWindowPlugin {
    /// In-process simulated clients (no network) to show something without a load generator.
    pub demo_bots: usize,
    /// How they are laid out.
    pub layout: DemoLayout,
    /// Write a PNG of the window here...
    pub screenshot: Option<PathBuf>,
    /// ...after this many frames, then exit.
    pub exit_after_frames: Option<u32>,
}

#[derive(Resource, Clone)]
struct Settings(MingleDebugWindowPlugin);

/// What the view shows and how.
#[derive(Resource, Default)]
struct View {
    /// `None`: every space.
    space: Option<SpaceId>,
    /// Follow the crowd (auto-fit) until the user pans or zooms.
    follow: bool,
    /// Draw (x, z) instead of (x, y): a 3D Y-up world seen from above.
    top_down: bool,
    frames: u32,
    last_totals: (u64, u64, f64),
    rates: (f64, f64),
}

#[derive(Component)]
struct Panel;

#[derive(Component)]
struct DemoBot {
    target: Vec2,
}

impl Plugin for MingleDebugWindowPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(Settings(self.clone()))
            .insert_resource(View {
                follow: self.layout == DemoLayout::Walking,
                ..default()
            })
            .add_systems(Startup, (setup, spawn_demo_bots))
            .add_systems(
                Update,
                (
                    walk_demo_bots,
                    controls,
                    draw,
                    update_panel,
                    screenshot_and_exit,
                ),
            );
    }
}

/// Space colours, cycled by space id.
const PALETTE: [Srgba; 6] = [
    Srgba::rgb(0.2, 0.8, 1.0),
    Srgba::rgb(1.0, 0.5, 0.2),
    Srgba::rgb(0.6, 1.0, 0.3),
    Srgba::rgb(1.0, 0.3, 0.7),
    Srgba::rgb(0.7, 0.5, 1.0),
    Srgba::rgb(1.0, 0.9, 0.3),
];

/// The colour of a space's circles.
pub fn space_color(space: SpaceId) -> Srgba {
    PALETTE[space.0 as usize % PALETTE.len()]
}

/// The colour of a line between an introduced pair.
pub const PAIR_COLOR: Srgba = Srgba::rgb(1.0, 1.0, 1.0);

/// The colour of a line between a pair introduced because they share a group (#17).
pub const GROUP_PAIR_COLOR: Srgba = Srgba::rgb(1.0, 0.3, 0.9);

fn setup(mut commands: Commands, settings: Res<Settings>, mut gizmos: ResMut<GizmoConfigStore>) {
    let (config, _) = gizmos.config_mut::<DefaultGizmoConfigGroup>();
    config.line.width = 3.0;
    let scale = if settings.0.layout == DemoLayout::Pair {
        0.1
    } else {
        1.0
    };
    commands.spawn((
        Camera2d,
        Projection::Orthographic(OrthographicProjection {
            scale,
            ..OrthographicProjection::default_2d()
        }),
    ));
    commands.spawn((
        Panel,
        Text::new(""),
        TextFont {
            font_size: FontSize::Px(14.0),
            ..default()
        },
        Node {
            position_type: PositionType::Absolute,
            top: Val::Px(8.0),
            left: Val::Px(8.0),
            ..default()
        },
    ));
}

/// Side of the square the demo bots walk: about five neighbours within the default range of
/// 20 each, never smaller than the view.
fn demo_side(bots: usize) -> f32 {
    world_side(bots, 5.0, 20.0).max(60.0)
}

fn spawn_demo_bots(
    mut commands: Commands,
    settings: Res<Settings>,
    mut directory: ResMut<PeerDirectory>,
) {
    let n = settings.0.demo_bots;
    let side = demo_side(n);
    let mut rng = SplitMix64::new(0x2545_F491_4F6C_DD1D);
    let mut unit = move || rng.unit();
    for k in 0..n {
        let id = PeerId(1_000_000 + k as u64);
        let pos = match settings.0.layout {
            DemoLayout::Pair => Vec2::new(
                if k == 0 { -10.0 } else { 10.0 } + 40.0 * (k / 2) as f32,
                0.0,
            ),
            DemoLayout::Walking => {
                Vec2::new(unit() * side - side / 2.0, unit() * side - side / 2.0)
            }
        };
        let space = SpaceId(if settings.0.layout == DemoLayout::Walking && k % 10 == 9 {
            1
        } else {
            0
        });
        let target = Vec2::new(unit() * side - side / 2.0, unit() * side - side / 2.0);
        let entity = commands
            .spawn((
                MinglePeer {
                    id,
                    realm: Realm(0),
                },
                MinglePosition(pos.extend(0.0)),
                MingleSpace(space),
                NearbyPeers::default(),
                DemoBot { target },
            ))
            .id();
        directory.register(id, entity);
    }
}

fn walk_demo_bots(
    settings: Res<Settings>,
    time: Res<Time>,
    mut bots: Query<(&mut MinglePosition, &mut DemoBot)>,
    mut rng: Local<Option<SplitMix64>>,
) {
    if settings.0.layout != DemoLayout::Walking {
        return;
    }
    let side = demo_side(settings.0.demo_bots);
    let rng = rng.get_or_insert_with(|| SplitMix64::new(0x9E37_79B9_7F4A_7C15));
    for (mut pos, mut bot) in &mut bots {
        let here = pos.0.truncate();
        let to = bot.target - here;
        if to.length() < 1.0 {
            let (a, b) = (rng.unit(), rng.unit());
            bot.target = Vec2::new(a * side - side / 2.0, b * side - side / 2.0);
        } else {
            pos.0 = (here + to.normalize() * 3.0 * time.delta_secs()).extend(0.0);
        }
    }
}

fn plane(view: &View, p: Vec3) -> Vec2 {
    if view.top_down {
        Vec2::new(p.x, -p.z)
    } else {
        p.truncate()
    }
}

fn controls(
    keys: Res<ButtonInput<KeyCode>>,
    buttons: Res<ButtonInput<MouseButton>>,
    scroll: Res<AccumulatedMouseScroll>,
    motion: Res<AccumulatedMouseMotion>,
    mut view: ResMut<View>,
    mut camera: Single<(&mut Transform, &mut Projection), With<Camera2d>>,
    clients: Query<(&MinglePosition, &MingleSpace)>,
    windows: Query<&Window, With<PrimaryWindow>>,
    config: Res<MingleServerConfig>,
) {
    let (transform, projection) = &mut *camera;
    let Projection::Orthographic(ortho) = &mut **projection else {
        return;
    };
    if keys.just_pressed(KeyCode::Tab) {
        let mut spaces: Vec<SpaceId> = clients.iter().map(|(_, s)| s.0).collect();
        spaces.sort_unstable();
        spaces.dedup();
        view.space = match view.space {
            None => spaces.first().copied(),
            Some(s) => spaces.iter().copied().find(|x| *x > s),
        };
    }
    if keys.just_pressed(KeyCode::KeyA) {
        view.space = None;
    }
    let pan = ortho.scale * 600.0 * 0.016;
    let mut moved = Vec2::ZERO;
    for (key, dir) in [
        (KeyCode::ArrowLeft, Vec2::NEG_X),
        (KeyCode::ArrowRight, Vec2::X),
        (KeyCode::ArrowUp, Vec2::Y),
        (KeyCode::ArrowDown, Vec2::NEG_Y),
    ] {
        if keys.pressed(key) {
            moved += dir * pan;
        }
    }
    if buttons.pressed(MouseButton::Right) {
        moved += Vec2::new(-motion.delta.x, motion.delta.y) * ortho.scale;
    }
    if moved != Vec2::ZERO {
        transform.translation += moved.extend(0.0);
        view.follow = false;
    }
    if scroll.delta.y != 0.0 {
        ortho.scale = (ortho.scale * (1.0 - scroll.delta.y * 0.1)).clamp(0.01, 1000.0);
        view.follow = false;
    }
    // A 3D Y-up world varies more in z than in y: draw it from above.
    let (mut ys, mut zs) = (0.0f32, 0.0f32);
    for (p, _) in &clients {
        ys = ys.max(p.0.y.abs());
        zs = zs.max(p.0.z.abs());
    }
    view.top_down = zs > ys;
    if view.follow {
        let visible: Vec<Vec2> = clients
            .iter()
            .filter(|(_, s)| view.space.is_none_or(|v| v == s.0))
            .map(|(p, _)| plane(&view, p.0))
            .collect();
        if let (Some(min), Some(max), Ok(window)) = (
            visible.iter().copied().reduce(Vec2::min),
            visible.iter().copied().reduce(Vec2::max),
            windows.single(),
        ) {
            let margin = Vec2::splat(config.proximity.leave_range);
            let (min, max) = (min - margin, max + margin);
            transform.translation = ((min + max) / 2.0).extend(0.0);
            let size = max - min;
            ortho.scale = (size.x / window.width()).max(size.y / window.height()) * 1.05;
        }
    }
}

fn draw(
    mut gizmos: Gizmos,
    view: Res<View>,
    config: Res<MingleServerConfig>,
    clients: Query<(&MinglePeer, &MinglePosition, &MingleSpace, &NearbyPeers)>,
    directory: Res<PeerDirectory>,
    positions: Query<&MinglePosition>,
    index: Res<super::ProximityIndex>,
) {
    for (peer, pos, space, nearby) in &clients {
        if view.space.is_some_and(|s| s != space.0) {
            continue;
        }
        let at = plane(&view, pos.0);
        let rules = config.proximity.rules(space.0);
        let color = space_color(space.0);
        gizmos
            .circle_2d(Isometry2d::from_translation(at), rules.range, color)
            .resolution(96);
        gizmos
            .circle_2d(
                Isometry2d::from_translation(at),
                rules.leave_range,
                color.with_alpha(0.35),
            )
            .resolution(96);
        gizmos.circle_2d(Isometry2d::from_translation(at), 0.6, Srgba::WHITE);
        for other in nearby.iter().filter(|o| *o > peer.id) {
            if let Some(p) = directory.get(other).and_then(|e| positions.get(e).ok()) {
                let color = if index.core().share_group(peer.id, other) {
                    GROUP_PAIR_COLOR
                } else {
                    PAIR_COLOR
                };
                gizmos.line_2d(at, plane(&view, p.0), color);
            }
        }
    }
}

fn update_panel(
    mut view: ResMut<View>,
    stats: Res<ServerStats>,
    time: Res<Time<Real>>,
    mut panel: Single<&mut Text, With<Panel>>,
    clients: Query<(&MinglePeer, &MinglePosition, &MingleSpace, &NearbyPeers)>,
    windows: Query<&Window, With<PrimaryWindow>>,
    camera: Single<(&Camera, &GlobalTransform), With<Camera2d>>,
) {
    let now = time.elapsed_secs_f64();
    let (intros, deps, at) = view.last_totals;
    if now - at >= 1.0 {
        let dt = now - at;
        view.rates = (
            (stats.introductions - intros) as f64 / dt,
            (stats.departures() - deps) as f64 / dt,
        );
        view.last_totals = (stats.introductions, stats.departures(), now);
    }
    let mut text = format!(
        "clients {}   introductions/s {:.1}   departures/s {:.1}   tick {:.3} ms\nrefreshes {}   signals relayed {}   space {}   [Tab] space  [A] all  arrows/right-drag pan  wheel zoom",
        clients.iter().count(),
        view.rates.0,
        view.rates.1,
        stats.last_tick_secs * 1000.0,
        stats.refreshes,
        stats.signals_relayed,
        view.space.map_or("all".to_owned(), |s| s.0.to_string()),
    );
    let (cam, cam_at) = *camera;
    let cursor = windows
        .single()
        .ok()
        .and_then(|w| w.cursor_position())
        .and_then(|c| cam.viewport_to_world_2d(cam_at, c).ok());
    if let Some(cursor) = cursor {
        let hovered = clients
            .iter()
            .filter(|(_, _, s, _)| view.space.is_none_or(|v| v == s.0))
            .map(|(p, pos, s, n)| (plane(&view, pos.0).distance(cursor), p, pos, s, n))
            .filter(|h| h.0 < 2.0)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, peer, pos, space, nearby)) = hovered {
            let list: Vec<String> = nearby.iter().map(|p| p.0.to_string()).collect();
            text += &format!(
                "\n{} at ({:.1}, {:.1}, {:.1}) space {}: near [{}]",
                peer.id,
                pos.0.x,
                pos.0.y,
                pos.0.z,
                space.0.0,
                list.join(", ")
            );
        }
    }
    panel.0 = text;
}

fn screenshot_and_exit(
    mut commands: Commands,
    settings: Res<Settings>,
    mut view: ResMut<View>,
    mut exit: MessageWriter<AppExit>,
) {
    view.frames += 1;
    let Some(limit) = settings.0.exit_after_frames else {
        return;
    };
    if let Some(path) = &settings.0.screenshot
        && view.frames == limit.saturating_sub(10).max(1)
    {
        commands
            .spawn(Screenshot::primary_window())
            .observe(save_to_disk(path.clone()));
    }
    if view.frames >= limit {
        exit.write(AppExit::Success);
    }
}

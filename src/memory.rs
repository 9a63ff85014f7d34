//! An in-memory exchange between one server app and its client apps, for deterministic tests
//! and tools: renet packets move between the apps' mailboxes
//! ([`MemoryServerTransport`], [`MemoryLink`]) when [`exchange`] is called, with no socket,
//! no netcode and no clock.
//!
//! ```
//! use bevy::prelude::*;
//! use mingle::client::{MemoryLink, MingleClientPlugin};
//! use mingle::protocol::{PeerId, Realm};
//! use mingle::server::{MingleServerConfig, MingleServerPlugin};
//!
//! let mut server = App::new();
//! server
//!     .add_plugins(MinimalPlugins)
//!     .add_plugins(MingleServerPlugin::in_memory(MingleServerConfig::default()));
//! server.update();
//! let mut client = App::new();
//! client.add_plugins(MinimalPlugins).add_plugins(MingleClientPlugin::default());
//! MemoryLink::connect(client.world_mut(), PeerId(1), Realm(1));
//! for _ in 0..3 {
//!     client.update();
//!     mingle::memory::exchange(server.world_mut(), [client.world_mut()]);
//!     server.update();
//!     mingle::memory::exchange(server.world_mut(), [client.world_mut()]);
//! }
//! client.update();
//! assert!(client.world().contains_resource::<mingle::client::MingleWelcome>());
//! ```

use bevy::prelude::World;

use crate::client::{MemoryLink, MemoryLinkState};
use crate::server::MemoryServerTransport;

/// Carries every client's packets to the server's mailbox and the server's packets to each
/// client's, in the order of `clients`; connects dialling clients, passes on goodbyes, and
/// closes the links of clients the server dropped. Worlds without a [`MemoryLink`] (or a
/// server without a [`MemoryServerTransport`]) are left alone.
pub fn exchange<'a>(server: &mut World, clients: impl IntoIterator<Item = &'a mut World>) {
    let Some(mut transport) = server.get_resource_mut::<MemoryServerTransport>() else {
        return;
    };
    for client in clients {
        let Some(mut link) = client.get_resource_mut::<MemoryLink>() else {
            continue;
        };
        let id = link.id().0;
        match link.state() {
            MemoryLinkState::Dialling => {
                let accepted = transport.connect(id, link.realm().to_user_data());
                link.set_state(if accepted {
                    MemoryLinkState::Open
                } else {
                    MemoryLinkState::Closed
                });
            }
            MemoryLinkState::Open if !transport.knows(id) => {
                link.set_state(MemoryLinkState::Closed);
            }
            MemoryLinkState::Open => {
                for packet in link.take_outbound() {
                    transport.push(id, packet);
                }
                for packet in transport.take_outbound(id) {
                    link.push(packet);
                }
            }
            MemoryLinkState::Closing => {
                transport.disconnect(id);
                client.remove_resource::<MemoryLink>();
            }
            MemoryLinkState::Closed => {}
        }
    }
}

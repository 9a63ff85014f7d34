//! The server's in-memory transport, for tests and tools: renet without netcode or a socket.
//!
//! [`MingleServerPlugin::in_memory`](super::MingleServerPlugin::in_memory) serves through a
//! [`MemoryServerTransport`] instead of [`ServerTransport`]: a mailbox of renet packets per
//! client that [`crate::memory::exchange`] fills and empties between app updates. Everything
//! above renet (intake, proximity, outbox, relays, rate limits) is the same code as over UDP;
//! what is left out is what only UDP has (netcode's handshake and encryption, shards, the
//! packet budget, the datagram guards). No clock and no socket is read here, so a run stepped
//! the same way gives the same messages.

use bevy::app::{App, PostUpdate, PreUpdate};
use bevy::ecs::system::SystemParam;
use bevy::log::{debug, error};
use bevy::prelude::{IntoScheduleConfigs, ResMut, Resource, World, resource_exists};
use bevy_renet::{RenetReceive, RenetSend, RenetServer, RenetServerPlugin};

use super::udp::ServerTransport;
use super::{MingleServerConfig, MingleServerStatus, TurnSecret, is_turn_url};

/// The in-memory transport's mailboxes, as a resource of the server app. Filled and emptied
/// by [`crate::memory::exchange`]; read by the server's transport systems.
#[derive(Debug, Default, Resource)]
pub struct MemoryServerTransport {
    /// Connected clients, in the order they connected (iteration order is deterministic).
    clients: Vec<MemoryClient>,
    /// Connections asked for since the last receive: (client id, user data).
    pending: Vec<(u64, Box<[u8; 256]>)>,
    /// Clients that said goodbye since the last receive.
    leaving: Vec<u64>,
    /// Packets from clients since the last receive, in arrival order.
    inbound: Vec<(u64, Vec<u8>)>,
    /// Clients whose packets reached renet in the last receive, each once.
    delivered: Vec<u64>,
}

#[derive(Debug)]
struct MemoryClient {
    id: u64,
    user_data: Box<[u8; 256]>,
    outbound: Vec<Vec<u8>>,
}

impl MemoryServerTransport {
    /// Whether `client_id` is connected or about to be (its connection is pending).
    pub fn knows(&self, client_id: u64) -> bool {
        self.pending.iter().any(|(id, _)| *id == client_id)
            || self.clients.iter().any(|c| c.id == client_id)
    }

    /// Asks for a connection of `client_id` with connect-token `user_data` (the realm): the
    /// server sees it connect at its next update. Refused (`false`) if the id is known.
    pub fn connect(&mut self, client_id: u64, user_data: [u8; 256]) -> bool {
        if self.knows(client_id) {
            return false;
        }
        self.pending.push((client_id, Box::new(user_data)));
        true
    }

    /// The client said goodbye: the server sees it disconnect at its next update.
    pub fn disconnect(&mut self, client_id: u64) {
        self.pending.retain(|(id, _)| *id != client_id);
        self.leaving.push(client_id);
    }

    /// A renet packet from `client_id`, read at the server's next update.
    pub fn push(&mut self, client_id: u64, packet: Vec<u8>) {
        self.inbound.push((client_id, packet));
    }

    /// The renet packets written to `client_id` since the last call, oldest first.
    pub fn take_outbound(&mut self, client_id: u64) -> Vec<Vec<u8>> {
        self.clients
            .iter_mut()
            .find(|c| c.id == client_id)
            .map(|c| std::mem::take(&mut c.outbound))
            .unwrap_or_default()
    }

    /// Clients connected, in the order they connected.
    pub fn connected(&self) -> impl Iterator<Item = u64> + '_ {
        self.clients.iter().map(|c| c.id)
    }

    fn user_data(&self, client_id: u64) -> Option<[u8; 256]> {
        self.clients
            .iter()
            .find(|c| c.id == client_id)
            .map(|c| *c.user_data)
    }
}

/// The transport behind [`Outgoing`](super::Outgoing): the UDP one, or the in-memory one.
#[derive(SystemParam)]
pub(crate) struct Wire<'w> {
    udp: Option<ResMut<'w, ServerTransport>>,
    memory: Option<ResMut<'w, MemoryServerTransport>>,
}

impl Wire<'_> {
    /// See [`ServerTransport::mark_outbound`] (the in-memory transport writes every frame).
    pub(crate) fn mark_outbound(&mut self, client_id: u64) {
        if let Some(udp) = self.udp.as_mut() {
            udp.mark_outbound(client_id);
        }
    }

    /// Clients whose packets reached renet in the last receive pass, each once.
    pub(crate) fn delivered(&self) -> &[u64] {
        match (&self.udp, &self.memory) {
            (Some(udp), _) => udp.delivered(),
            (None, Some(memory)) => &memory.delivered,
            (None, None) => &[],
        }
    }

    /// The connect token's user data of a connected client.
    pub(crate) fn user_data(&self, client_id: u64) -> Option<[u8; 256]> {
        match (&self.udp, &self.memory) {
            (Some(udp), _) => udp.user_data(client_id),
            (None, Some(memory)) => memory.user_data(client_id),
            (None, None) => None,
        }
    }
}

/// The startup of an in-memory server: the configuration's checks, then renet and the
/// mailboxes; [`MingleServerStatus::InMemory`] or `Failed`.
pub(crate) fn start(world: &mut World) {
    let config = world.resource::<MingleServerConfig>();
    let checked = config
        .validate()
        .map_err(|err| err.to_string())
        .and_then(|()| {
            let turn = config.ice_servers.iter().any(|u| is_turn_url(u));
            if turn && !world.contains_resource::<TurnSecret>() {
                Err("`ice_servers` has TURN URLs but no TURN secret was given".to_owned())
            } else {
                Ok(())
            }
        });
    let status = match checked {
        Ok(()) => {
            world.insert_resource(RenetServer::new(crate::protocol::connection_config()));
            world.insert_resource(MemoryServerTransport::default());
            debug!("mingle server serving in memory");
            MingleServerStatus::InMemory
        }
        Err(err) => {
            error!("mingle server not started: {err}");
            MingleServerStatus::Failed(err)
        }
    };
    world.insert_resource(status);
}

/// The in-memory transport's systems, beside the UDP ones (each runs only with its resource).
pub(crate) fn add_systems(app: &mut App) {
    let in_memory = resource_exists::<MemoryServerTransport>;
    app.add_systems(
        PreUpdate,
        receive_packets
            .in_set(RenetReceive)
            .after(RenetServerPlugin::update_system)
            .before(RenetServerPlugin::emit_server_events_system)
            .run_if(in_memory),
    )
    .add_systems(PostUpdate, send_packets.in_set(RenetSend).run_if(in_memory));
}

/// Applies the connects, goodbyes and packets of the mailboxes to renet, and ends the
/// connections renet ended (as the UDP transport's receive pass does).
fn receive_packets(mut memory: ResMut<MemoryServerTransport>, mut server: ResMut<RenetServer>) {
    let memory = &mut *memory;
    memory.delivered.clear();
    for (client_id, user_data) in std::mem::take(&mut memory.pending) {
        server.add_connection(client_id);
        memory.clients.push(MemoryClient {
            id: client_id,
            user_data,
            outbound: Vec::new(),
        });
    }
    for client_id in std::mem::take(&mut memory.leaving) {
        memory.clients.retain(|c| c.id != client_id);
        server.remove_connection(client_id);
    }
    for (client_id, packet) in std::mem::take(&mut memory.inbound) {
        if !memory.clients.iter().any(|c| c.id == client_id) {
            continue;
        }
        // renet packet types 0..=3 carry messages; an ack-only packet has none to read.
        if packet.first().is_some_and(|&t| t <= 3) && !memory.delivered.contains(&client_id) {
            memory.delivered.push(client_id);
        }
        if let Err(e) = server.process_packet_from(&packet, client_id) {
            debug!("memory packet for unknown client {client_id}: {e}");
        }
    }
    for client_id in server.disconnections_id() {
        memory.clients.retain(|c| c.id != client_id);
        server.remove_connection(client_id);
    }
}

/// Moves what renet has for each client into its mailbox.
fn send_packets(mut memory: ResMut<MemoryServerTransport>, mut server: ResMut<RenetServer>) {
    for client in &mut memory.clients {
        if let Ok(packets) = server.get_packets_to_send(client.id) {
            client.outbound.extend(packets);
        }
    }
}

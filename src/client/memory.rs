//! The client's in-memory link, for tests and tools: renet without netcode or a socket.
//!
//! [`MemoryLink::connect`] stands in for [`MingleClient::connect`](super::MingleClient::connect):
//! it gives the app a [`RenetClient`] and a [`MemoryLink`], whose packets
//! [`crate::memory::exchange`] carries to and from an in-memory server
//! ([`MingleServerPlugin::in_memory`](crate::server::MingleServerPlugin::in_memory)). The
//! session, the peer set, the messages and [`MingleConnectionState`] behave as over UDP;
//! there is no handshake, no write pacing and no redial (a link the server ends stays ended).

use bevy::app::{App, PostUpdate, PreUpdate};
use bevy::prelude::{
    Commands, IntoScheduleConfigs, MessageWriter, ResMut, Resource, SystemCondition, World,
    resource_exists,
};
use bevy_renet::{RenetClient, RenetClientPlugin, RenetReceive, RenetSend};

use super::connection::{MingleConnectionChanged, MingleConnectionState};
use super::session::ClientSession;
use super::state::MingleWelcome;
use super::{MingleClientSystems, receive};
use crate::protocol::{PeerId, Realm, connection_config};

/// Where an in-memory link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLinkState {
    /// Waiting for the exchange to connect it to the server.
    Dialling,
    /// Connected: packets flow.
    Open,
    /// The client said goodbye; the exchange tells the server.
    Closing,
    /// Over (the server ended it, refused it, or was told goodbye).
    Closed,
}

/// A client app's in-memory connection to a server app: its id, realm and packet mailboxes.
#[derive(Debug, Resource)]
pub struct MemoryLink {
    id: PeerId,
    realm: Realm,
    state: MemoryLinkState,
    /// Packets from the server, read at the next update.
    inbound: Vec<Vec<u8>>,
    /// Packets for the server, carried at the next exchange.
    outbound: Vec<Vec<u8>>,
}

impl MemoryLink {
    /// Connects the client app in `world` (it has the client plugin) as `id` in `realm`, in
    /// memory: the next [`crate::memory::exchange`] connects it to the server. Replaces any
    /// connection the app had.
    pub fn connect(world: &mut World, id: PeerId, realm: Realm) {
        world.insert_resource(RenetClient::new(connection_config()));
        world.insert_resource(MemoryLink {
            id,
            realm,
            state: MemoryLinkState::Dialling,
            inbound: Vec::new(),
            outbound: Vec::new(),
        });
        let state = MingleConnectionState::Connecting { attempt: 1 };
        world.insert_resource(state.clone());
        world.write_message(MingleConnectionChanged(state));
    }

    /// The id it connects as.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// The realm it joins.
    pub fn realm(&self) -> Realm {
        self.realm
    }

    /// Where the link stands.
    pub fn state(&self) -> MemoryLinkState {
        self.state
    }

    /// Sets where the link stands (the exchange's side of the handshake and of goodbyes).
    pub fn set_state(&mut self, state: MemoryLinkState) {
        self.state = state;
    }

    /// A packet from the server, read at the client's next update.
    pub fn push(&mut self, packet: Vec<u8>) {
        self.inbound.push(packet);
    }

    /// The packets written for the server since the last call, oldest first.
    pub fn take_outbound(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.outbound)
    }
}

/// The in-memory link's systems, beside the UDP ones (each runs only with a [`MemoryLink`]).
pub(crate) fn add_systems(app: &mut App) {
    let linked = resource_exists::<MemoryLink>.and_then(resource_exists::<RenetClient>);
    app.add_systems(
        PreUpdate,
        receive_packets
            .in_set(RenetReceive)
            .after(RenetClientPlugin::update_system)
            .run_if(linked),
    )
    .add_systems(
        PreUpdate,
        watch
            .after(receive::receive)
            .before(receive::publish)
            .in_set(MingleClientSystems::Receive)
            .run_if(resource_exists::<MemoryLink>),
    )
    .add_systems(
        PostUpdate,
        send_packets
            .in_set(RenetSend)
            .run_if(resource_exists::<MemoryLink>),
    );
}

/// Feeds the server's packets to renet and mirrors the link's state into it.
fn receive_packets(mut link: ResMut<MemoryLink>, mut client: ResMut<RenetClient>) {
    match link.state {
        MemoryLinkState::Dialling => client.set_connecting(),
        MemoryLinkState::Open => client.set_connected(),
        MemoryLinkState::Closing | MemoryLinkState::Closed => {
            client.disconnect_due_to_transport();
            return;
        }
    }
    for packet in std::mem::take(&mut link.inbound) {
        client.process_packet(&packet);
    }
}

/// Marks the connection connected once welcomed, and ends the session of a link the server
/// ended (peers leave, as after a drop over UDP; no redial).
fn watch(
    mut commands: Commands,
    link: bevy::prelude::Res<MemoryLink>,
    mut session: ResMut<ClientSession>,
    mut state: ResMut<MingleConnectionState>,
    mut changed: MessageWriter<MingleConnectionChanged>,
) {
    let next = match link.state {
        MemoryLinkState::Closed => {
            session.connection_lost();
            commands.remove_resource::<MingleWelcome>();
            commands.remove_resource::<RenetClient>();
            commands.remove_resource::<MemoryLink>();
            MingleConnectionState::Disconnected
        }
        MemoryLinkState::Open if !state.is_connected() => match session.welcome() {
            Some(welcome) => MingleConnectionState::Connected { you: welcome.you },
            None => return,
        },
        _ => return,
    };
    if *state != next {
        *state = next.clone();
        changed.write(MingleConnectionChanged(next));
    }
}

/// Moves renet's packets into the link's mailbox; a client whose renet is gone (the game
/// disconnected) or disconnected says goodbye.
fn send_packets(mut link: ResMut<MemoryLink>, client: Option<ResMut<RenetClient>>) {
    let Some(mut client) = client.filter(|c| !c.is_disconnected()) else {
        if matches!(
            link.state,
            MemoryLinkState::Open | MemoryLinkState::Dialling
        ) {
            link.state = MemoryLinkState::Closing;
        }
        return;
    };
    if link.state == MemoryLinkState::Open {
        let packets = client.get_packets_to_send();
        link.outbound.extend(packets);
    }
}

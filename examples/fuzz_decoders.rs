//! A long fuzz run of everything that parses untrusted bytes: both message decoders and the
//! renet packet guard. Inputs are mutations of valid encodings (bit flips, truncations,
//! insertions, splices) and plain random bytes; any panic aborts the run.
//!
//! ```text
//! cargo run --release --example fuzz_decoders -- 10000000
//! ```

use mingle::protocol::{
    ClientToServer, ConnectionOutcome, PeerId, RejectReason, ServerToClient, SpaceId,
    decode_client, decode_server, encode_client, encode_server,
};
use mingle::server::renet_guard::{check, slice_packet};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut s = vec![
        encode_client(&ClientToServer::Position {
            space: SpaceId(3),
            position: [1.0, -2.0, 3.5],
        }),
        encode_client(&ClientToServer::RequestPeerRefresh),
        encode_client(&ClientToServer::Signal {
            to: PeerId(9),
            payload: b"v=0 o=- 1 2 IN IP4".to_vec(),
        }),
        encode_client(&ClientToServer::ConnectionReport {
            peer: PeerId(2),
            outcome: ConnectionOutcome::Failed,
        }),
        encode_server(&ServerToClient::PeersChanged {
            entered: vec![
                (PeerId(1), mingle::proximity::ArrivalCause::Proximity),
                (PeerId(300), mingle::proximity::ArrivalCause::Group),
            ],
            left: vec![(PeerId(70_000), mingle::proximity::DepartureCause::Blocked)],
        }),
        encode_server(&ServerToClient::PeerSnapshot {
            peers: vec![PeerId(5); 20],
        }),
        encode_server(&ServerToClient::Welcome {
            you: PeerId(1),
            range: 20.0,
            leave_range: 25.0,
            tick_hz: 20.0,
        }),
        encode_server(&ServerToClient::Rejected {
            reason: RejectReason::NotIntroduced { peer: PeerId(4) },
        }),
        slice_packet(true, 0, 1, 3),
        vec![0, 0x40, 0x01, 2, 0, 1, 0x05, 1, 2, 3, 4, 5],
        vec![4, 0x01, 0x02, 0x00],
    ];
    s.push(Vec::new());
    s
}

fn main() {
    let count: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seeds = seeds();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut input = Vec::with_capacity(4096);
    let (mut decoded, mut guarded_ok) = (0u64, 0u64);
    let start = std::time::Instant::now();
    for n in 0..count {
        input.clear();
        if n % 8 == 0 {
            let len = rng.below(96);
            input.extend((0..len).map(|_| rng.next() as u8));
        } else {
            input.extend_from_slice(&seeds[rng.below(seeds.len())]);
            for _ in 0..1 + rng.below(4) {
                match rng.below(5) {
                    0 if !input.is_empty() => {
                        let i = rng.below(input.len());
                        input[i] ^= 1 << rng.below(8);
                    }
                    1 if !input.is_empty() => {
                        let i = rng.below(input.len());
                        input[i] = rng.next() as u8;
                    }
                    2 => input.truncate(rng.below(input.len() + 1)),
                    3 => {
                        let i = rng.below(input.len() + 1);
                        input.insert(i, rng.next() as u8);
                    }
                    _ => {
                        let other = &seeds[rng.below(seeds.len())];
                        let from = rng.below(other.len() + 1);
                        input.extend_from_slice(&other[from..]);
                    }
                }
            }
        }
        decoded +=
            u64::from(decode_client(&input).is_ok()) + u64::from(decode_server(&input).is_ok());
        guarded_ok += u64::from(check(&input).is_ok());
    }
    println!(
        "fuzz_decoders: {count} inputs, no panic, {decoded} decoded as valid messages, {guarded_ok} passed the renet guard, {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

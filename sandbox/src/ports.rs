//! Free ports on 127.0.0.1 for a federation's processes to bind later.

use std::net::{TcpListener, UdpSocket};

use crate::build::{setup, SandboxError};

/// Ports a throwaway federation listens on are picked below Linux's ephemeral range
/// (32768–60999 by default): a port picked there and released until the process binds it
/// could meanwhile become the local port of any outgoing connection on the host (tests
/// running side by side open hundreds), and the later bind would fail.
const PICKED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Every port this process has picked: a port is picked, released, and bound later by the
/// process it is written into, so a second pick of the same port in between (another
/// federation built side by side in the same test binary, or another node of this one)
/// would fail that bind. No port is handed out twice.
static PICKED: std::sync::Mutex<Option<std::collections::BTreeSet<u16>>> =
    std::sync::Mutex::new(None);

/// Whether `port` was not picked before in this process (and is now).
fn first_pick(port: u16) -> bool {
    let mut picked = PICKED.lock().unwrap_or_else(|p| p.into_inner());
    picked.get_or_insert_with(Default::default).insert(port)
}

/// A pseudo-random port in [`PICKED_PORTS`] that `bind` accepts now and this process has
/// not picked before; port 0's pick if none of a bounded number of tries does.
fn free_port(bind: impl Fn(u16) -> std::io::Result<u16>) -> Result<u16, SandboxError> {
    use std::hash::{BuildHasher, Hasher};
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u32(std::process::id());
    let mut x = seed.finish() | 1;
    let span = u64::from(PICKED_PORTS.end - PICKED_PORTS.start);
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = PICKED_PORTS.start + u16::try_from(x % span).unwrap_or(0);
        if PICKED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|picked| picked.contains(&port))
        {
            continue;
        }
        if let Ok(port) = bind(port) {
            if first_pick(port) {
                return Ok(port);
            }
        }
    }
    bind(0).map_err(setup("find a free port"))
}

pub(crate) fn free_udp_port() -> Result<u16, SandboxError> {
    free_port(|port| {
        UdpSocket::bind(("127.0.0.1", port))?
            .local_addr()
            .map(|a| a.port())
    })
}

pub(crate) fn free_tcp_port(preferred: u16) -> Result<u16, SandboxError> {
    if preferred != 0
        && TcpListener::bind(("127.0.0.1", preferred)).is_ok()
        && first_pick(preferred)
    {
        return Ok(preferred);
    }
    free_port(|port| {
        TcpListener::bind(("127.0.0.1", port))?
            .local_addr()
            .map(|a| a.port())
    })
}

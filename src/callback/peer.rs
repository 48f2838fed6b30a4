//! Who is on the other end of a loopback connection (Linux): the user owning the peer's
//! socket, read from the kernel's socket tables (`/proc/net/tcp`, `/proc/net/tcp6`). The
//! callback listener answers only its own user (and root): another user of the machine, who
//! can read the browser's command line and so the one-time launch URL, or guess the port,
//! gets nothing from it and can deliver nothing to it (RFC 8252 §8.3; RFC 9700 §4.5).

use std::net::{IpAddr, SocketAddr, TcpStream};

/// Whether the peer of `stream` (a connection accepted on loopback) belongs to this process's
/// user or to root; `None` when that cannot be told (not Linux, or the tables do not show the
/// socket), and the request is then taken as before.
pub(super) fn same_user(stream: &TcpStream) -> Option<bool> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let (ours, peer) = (stream.local_addr().ok()?, stream.peer_addr().ok()?);
    let table = match peer.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).ok()?;
    // Our end of the connection shows our user; the peer's end, its user.
    let my_uid = owner(&text, ours, peer)?;
    let peer_uid = owner(&text, peer, ours)?;
    Some(peer_uid == my_uid || peer_uid == 0)
}

/// The user id of the socket whose local address is `local` and remote `remote`, in a table
/// of the kernel's format (a header line, then `sl local rem st queues timer retrnsmt uid …`
/// with addresses in hexadecimal). Pure.
pub(super) fn owner(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let (local, remote) = (hex(local), hex(remote));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let matches = fields
            .get(1)
            .is_some_and(|f| f.eq_ignore_ascii_case(&local))
            && fields
                .get(2)
                .is_some_and(|f| f.eq_ignore_ascii_case(&remote));
        if matches {
            fields.get(7)?.parse().ok()
        } else {
            None
        }
    })
}

/// An address as the kernel's tables show it: each 32-bit word of the address in the
/// machine's byte order, in hexadecimal, then `:` and the port.
fn hex(addr: SocketAddr) -> String {
    let words: Vec<[u8; 4]> = match addr.ip() {
        IpAddr::V4(ip) => vec![ip.octets()],
        IpAddr::V6(ip) => ip
            .octets()
            .chunks(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
    };
    let mut text: String = words
        .into_iter()
        .map(|w| format!("{:08X}", u32::from_ne_bytes(w)))
        .collect();
    text.push_str(&format!(":{:04X}", addr.port()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn owners_are_read_from_the_kernels_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 20 4 30 10 -1\n   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0 20 4 30 10 -1\n";
        let server: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let client: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        assert_eq!(owner(table, server, client), Some(1000));
        assert_eq!(owner(table, client, server), Some(1001));
        assert_eq!(owner(table, client, "127.0.0.1:1".parse().unwrap()), None);
        assert_eq!(
            hex("[::1]:80".parse().unwrap()),
            "00000000000000000000000001000000:0050"
        );
    }

    #[test]
    fn a_connection_of_this_process_is_its_own_users() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(same_user(&accepted), Some(true));
        }
        drop(client);
    }
}

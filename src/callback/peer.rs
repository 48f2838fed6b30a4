//! Who is on the other end of a loopback connection (Linux): the user owning the peer's
//! socket, read from the kernel's socket tables (`/proc/net/tcp`, `/proc/net/tcp6`). The
//! callback listener answers only its own user (and root): another user of the machine, who
//! can read the browser's command line and so the one-time launch URL, or guess the port,
//! gets nothing from it and can deliver nothing to it (RFC 8252 §8.3; RFC 9700 §4.5).

use std::net::{IpAddr, SocketAddr, TcpStream};

/// Whether the peer of `stream` (a connection accepted on loopback) belongs to this process's
/// user or to root; `None` when that cannot be told (not Linux, or no table can be read), and
/// the request is then taken as before.
pub(super) fn same_user(stream: &TcpStream) -> Option<bool> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let (ours, peer) = (stream.local_addr().ok()?, stream.peer_addr().ok()?);
    let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .collect();
    if tables.is_empty() {
        return None;
    }
    Some(same_user_in(&tables.join("\n"), ours, peer))
}

/// Whether, in the kernel's tables, the socket at `peer` is owned by the user owning ours at
/// `ours`, or by root. A row that is missing, or that no open socket owns, proves nothing and
/// is refused: a program that sends its request and closes (or resets) at once leaves a
/// time-wait row the kernel shows with uid 0, or no row at all. Pure.
pub(super) fn same_user_in(tables: &str, ours: SocketAddr, peer: SocketAddr) -> bool {
    match (owner(tables, ours, peer), owner(tables, peer, ours)) {
        (Some(me), Some(them)) => them == me || them == 0,
        _ => false,
    }
}

/// The user id of the open socket whose local address is `local` and remote `remote`, in
/// tables of the kernel's format (`sl local rem st queues timer retrnsmt uid timeout inode …`
/// with addresses in hexadecimal; an IPv4 connection of an IPv6 socket shows its addresses
/// IPv4-mapped). A row with inode 0 has no open socket behind it (time-wait, orphaned): its
/// uid is not an owner's. Pure.
pub(super) fn owner(tables: &str, local: SocketAddr, remote: SocketAddr) -> Option<u32> {
    let forms = |a: SocketAddr| {
        let mut forms = vec![hex(a)];
        if let IpAddr::V4(ip) = a.ip() {
            forms.push(hex(SocketAddr::new(
                IpAddr::V6(ip.to_ipv6_mapped()),
                a.port(),
            )));
        }
        forms
    };
    let (local, remote) = (forms(local), forms(remote));
    let is = |field: Option<&&str>, forms: &[String]| {
        field.is_some_and(|f| forms.iter().any(|x| f.eq_ignore_ascii_case(x)))
    };
    tables.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let open = fields.get(9).is_some_and(|inode| *inode != "0");
        if open && is(fields.get(1), &local) && is(fields.get(2), &remote) {
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
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        let server_row = "   0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 11 1 0 20 4 30 10 -1";
        let client_row = "   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 12 1 0 20 4 30 10 -1";
        // What a client that closed first leaves: a time-wait row, uid 0 and inode 0.
        let gone_row = "   1: 0100007F:C350 0100007F:1F90 05 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000";
        let table = format!("{header}\n{server_row}\n{client_row}\n");
        let server: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let client: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        assert_eq!(owner(&table, server, client), Some(1000));
        assert_eq!(owner(&table, client, server), Some(1001));
        assert_eq!(owner(&table, client, "127.0.0.1:1".parse().unwrap()), None);
        assert!(!same_user_in(&table, server, client));
        let root = table.replace(" 1001 ", "    0 ");
        assert!(same_user_in(&root, server, client));
        let gone = format!("{header}\n{server_row}\n{gone_row}\n");
        assert_eq!(owner(&gone, client, server), None);
        assert!(!same_user_in(&gone, server, client));
        let missing = format!("{header}\n{server_row}\n");
        assert!(!same_user_in(&missing, server, client));
        // An IPv6 socket's IPv4 connection, in tcp6.
        let mapped = "   2: 0000000000000000FFFF00000100007F:C350 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 13 1 0 20 4 30 10 -1";
        let dual = format!("{header}\n{server_row}\n{header}\n{mapped}\n");
        assert!(same_user_in(&dual, server, client));
        assert_eq!(
            hex("[::1]:80".parse().unwrap()),
            "00000000000000000000000001000000:0050"
        );
    }

    #[test]
    fn a_peer_that_closed_first_is_not_taken_for_root() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(same_user(&accepted), Some(true));
        // Closed by its program: the kernel keeps the connection's end without an owner.
        drop(client);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while same_user(&accepted) != Some(false) {
            assert!(
                std::time::Instant::now() < deadline,
                "a closed peer's row still passes for its user's or root's"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
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

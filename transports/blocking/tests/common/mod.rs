//! Helpers shared by the blocking transport's integration tests.

/// The sockets of this machine connected to 127.0.0.1:`port` that a process still holds
/// (from `/proc/net/tcp`: a closed socket still finishing its TCP close has no inode). A
/// connection's reader and writer threads each hold its socket, so when the count drops
/// they have ended.
pub fn open_sockets_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp (Linux)");
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 9 && fields[2] == remote && fields[9] != "0"
        })
        .count()
}

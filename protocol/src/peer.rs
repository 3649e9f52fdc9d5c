//! Who is at the other end of a Unix socket, from the kernel. Both sides use
//! it: the daemon refuses other users' connections, and clients refuse to
//! send their hello (which may carry an API key) to another user's socket.

use std::os::fd::AsFd;

/// The uid of the process at the other end of the connected Unix socket
/// `socket` (SO_PEERCRED on Linux, getpeereid elsewhere). For a client this
/// is the user that called `listen` on the socket; for a server, the user
/// that called `connect`.
pub fn peer_uid(socket: &impl AsFd) -> std::io::Result<u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let credentials = nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::PeerCredentials)
            .map_err(std::io::Error::from)?;
        Ok(credentials.uid())
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (uid, _gid) = nix::unistd::getpeereid(socket).map_err(std::io::Error::from)?;
        Ok(uid.as_raw())
    }
}

/// The real uid of this process: the user every peer must be.
pub fn own_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_of_a_pair_are_this_user() {
        let (left, right) = std::os::unix::net::UnixStream::pair().expect("pair");
        assert_eq!(peer_uid(&left).expect("left"), own_uid());
        assert_eq!(peer_uid(&right).expect("right"), own_uid());
    }

    #[test]
    fn a_client_sees_the_listener_user() {
        let temp = tempfile::tempdir().expect("tempdir");
        let socket = temp.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        let client = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        assert_eq!(peer_uid(&client).expect("client side"), own_uid());
        assert_eq!(peer_uid(&server).expect("server side"), own_uid());
    }
}

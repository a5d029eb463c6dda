import POSIX
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The file a VPN's hub (`DIR/hub.endpoint`) or member (`DIR/peer-K.endpoint`)
/// publishes in the job's folder: written atomically (a temporary name, then
/// `rename`), mode 0600, and held by an open-file-description lock while its
/// writer lives, so that a reader on another node can tell a live writer
/// from a stale file; removed by its writer only while it is still its own.
enum PublishedFile {
    /// Writes `text` to `path` through `tmp`, takes the lock, and returns
    /// the descriptor that holds it (close it, or exit, to drop it).
    static func publish(_ text: String, at path: String, through tmp: String) throws(TunnelError) -> Int32 {
        unlink(tmp)
        let fd = try sys("create \(tmp)", code: .setup) { open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        // A file system without locks still gets the file: readers then go by pid.
        _ = fcntl(fd, ofdSetLock, &lock)
        let d = Descriptor(owning: dup(fd))
        do { try d.writeAll(Array(text.utf8)) } catch {
            close(fd)
            unlink(tmp)
            throw TunnelError(.setup, "write \(tmp)", errno: error)
        }
        _ = fsync(fd)
        if rename(tmp, path) != 0 {
            let e = errno
            close(fd)
            unlink(tmp)
            throw TunnelError(.setup, "rename \(tmp) to \(path)", errno: Errno(rawValue: e))
        }
        return fd
    }

    /// Whether some process holds the lock on the open file `fd` (F_OFD_GETLK
    /// reports a conflicting lock; F_UNLCK means nobody holds one); nil
    /// where the file system cannot say.
    static func lockHeld(_ fd: Int32) -> Bool? {
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        return fcntl(fd, ofdGetLock, &lock) == 0 ? lock.l_type != Int16(F_UNLCK) : nil
    }

    /// Removes `path` if it is still the file behind `fd` (a newer writer's
    /// file stays), and closes `fd`.
    static func unpublish(_ path: String, fd: Int32) {
        var mine = stat(), there = stat()
        if fstat(fd, &mine) == 0, stat(path, &there) == 0, mine.st_ino == there.st_ino, mine.st_dev == there.st_dev {
            unlink(path)
        }
        close(fd)
    }
}

// Linux's open-file-description locks (fcntl.h defines them only with
// _GNU_SOURCE; the numbers are kernel ABI).
private let ofdGetLock: Int32 = 36
private let ofdSetLock: Int32 = 37

import CWGShim

/// `prctl(PR_SET_DUMPABLE, 0)`: no process without CAP_SYS_PTRACE over
/// this one's memory (which, for a process started in the host's user
/// namespace, means root) may ptrace it or open its `/proc/PID/mem`,
/// `environ` and the like. `wgns` calls it first thing in `main`, before
/// anything reads a key: a descriptor of `/proc/PID/mem` opened before
/// that call keeps working (Linux checks access when it is opened), so the
/// earlier the better, and the time from exec to this call is the one
/// window wgns cannot close (see README, "Memory").
public func becomeUndumpable() { _ = CWGShim_set_undumpable() }

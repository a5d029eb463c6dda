#ifndef CWGSHIM_H
#define CWGSHIM_H
/* What Swift cannot import directly: _GNU_SOURCE-only calls and constants,
 * calls Swift imports badly (variadic, unions), and the spawn helpers. No policy lives here. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Namespaces (need _GNU_SOURCE). */
extern const int CWGShim_CLONE_NEWUSER;
extern const int CWGShim_CLONE_NEWNET;
extern const int CWGShim_CLONE_NEWNS;
extern const int CWGShim_CLONE_NEWPID;
int CWGShim_unshare(int flags);
int CWGShim_setns(int fd, int nstype);

/* __nss_configure_lookup("hosts", services) (glibc's <nss.h>, not imported):
 * replaces the hosts line of /etc/nsswitch.conf for this process. */
int CWGShim_nss_configure_hosts(const char *services);

/* Children (spawn.c): fork + exec with the async-signal-safe steps between. */
enum {
    CWGShim_STAGE_PDEATHSIG = 1, CWGShim_STAGE_PGROUP = 2, CWGShim_STAGE_FDS = 3,
    CWGShim_STAGE_USERNS = 4, CWGShim_STAGE_CWD = 5, CWGShim_STAGE_EXEC = 6,
    CWGShim_STAGE_SANDBOX = 7, CWGShim_STAGE_SECCOMP = 8, CWGShim_STAGE_CAPS = 9,
};
struct CWGShim_spawn_attr {
    const char *path;          /* searched in PATH when it has no '/' */
    char *const *argv;
    char *const *envp;         /* NULL: inherit */
    const int *fd_map;         /* child fd i = fd_map[i]; -1 closes it */
    int fd_count;              /* fds >= fd_count close on exec */
    int pdeathsig;             /* 0: none */
    int new_pgroup;
    int tty_fd;                /* >= 0: make the child's group the terminal's foreground */
    int new_userns;            /* unshare(CLONE_NEWUSER), map inner ids to the current ones */
    unsigned inner_uid, inner_gid;
    const char *cwd;           /* NULL: unchanged */
    int deny_tty_injection;    /* PR_SET_NO_NEW_PRIVS + CWGShim_deny_tty_injection() before exec */
    int drop_admin_caps;       /* CAP_SYS_ADMIN and CAP_SYS_PTRACE leave the bounding set before exec */
};
/* Returns the pid, or -1 with the failing stage and errno (the child is reaped). */
pid_t CWGShim_spawn(const struct CWGShim_spawn_attr *attr, int *stage, int *err);
/* fork(); the child gets PR_SET_PDEATHSIG(sig) and the signal state of an exec'd
 * child (default handlers, empty mask), and continues in the caller's code. */
pid_t CWGShim_fork_with_pdeathsig(int sig);
/* The same, and the child is undumpable (PR_SET_DUMPABLE 0) before it
 * returns: no process of the same user can open its /proc/PID/mem in the
 * moment between fork and the child's own prctl. */
pid_t CWGShim_fork_undumpable_with_pdeathsig(int sig);
/* The job's sandbox: a fork that is pid 1 of a new pid namespace, in a mount
 * namespace of its own (its /proc, `detach` unmounted) and, with
 * nested_userns, a user namespace of its own mapping inner_uid/gid to the
 * caller's ids. It sends `channel_text` with descriptors of its user, mnt, net
 * and pid namespaces on channel_fd (if >= 0), starts `job` (NULL: none) as its
 * child, passes signals on, and exits with the job's shell status once the job
 * ends, killing whatever the job left. */
struct CWGShim_sandbox_attr {
    int nested_userns;
    unsigned inner_uid, inner_gid;
    const char *const *detach;
    int detach_count;
    int channel_fd;
    const char *channel_text;
    /* Paths the job must not read (the configs and key files the tunnel was
     * built from, a VPN folder): a directory gets an empty read-only tmpfs
     * over it, anything else a read-only bind of `mask_source` (an empty
     * file). A path that does not exist is skipped. Done before the nested
     * user namespace, so that the job cannot undo it. */
    const char *const *mask;
    int mask_count;
    const char *mask_source;
    /* Also mask (as files) every unix socket that the sandbox's pid 1 may
     * connect to directly under /tmp, /var/tmp and /dev/shm, and one level
     * further in the folders tmux, X11, emacs, screen, ssh-agent, VS Code
     * and Jupyter use there (tmux-UID, .X11-unix, ...): such servers run
     * commands for their clients. */
    int mask_host_sockets;
    /* Called in the sandbox's pid 1 (a fork of the caller) just before it
     * makes itself dumpable to write its uid_map (with nested_userns): the
     * caller wipes there its copy of every secret. NULL: none. */
    void (*before_dumpable)(void);
};
/* Returns the sandbox's pid, or -1 with the failing stage and errno. */
pid_t CWGShim_spawn_sandboxed(const struct CWGShim_spawn_attr *job, const struct CWGShim_sandbox_attr *sandbox,
                              int *stage, int *err);
/* sendmsg of `text` with SCM_RIGHTS `fds` (at most 8). */
int CWGShim_send_fds(int sock, const char *text, const int *fds, int count);
/* sendmsg of `text` with descriptors of the caller's user, mnt and net namespaces. */
int CWGShim_send_own_namespaces(int sock, const char *text);
/* recvmsg into buf; received descriptors (close-on-exec) into fds, their number in *count. */
ssize_t CWGShim_recv_fds(int sock, void *buf, size_t len, int *fds, int max_fds, int *count);
/* A seccomp filter (after PR_SET_NO_NEW_PRIVS) under which ioctl(TIOCSTI)
 * and ioctl(TIOCLINUX) fail with EPERM, for this process and everything it
 * starts: nothing can push input into a terminal it shares with the user's
 * shell. Checks the native and (x86_64) the i386 and x32 ioctl; any other
 * architecture's system call kills the process. 0, or -1 with errno. */
int CWGShim_deny_tty_injection(void);
/* prctl(PR_SET_DUMPABLE, 0): no ptrace, no /proc/PID/mem for anyone without CAP_SYS_PTRACE. */
int CWGShim_set_undumpable(void);
/* prctl(PR_SET_DUMPABLE, on). */
int CWGShim_set_dumpable(int on);
/* pipe2 (needs _GNU_SOURCE). */
int CWGShim_pipe2(int fds[2], int flags);
/* signalfd(-1, mask, SFD_CLOEXEC|SFD_NONBLOCK) (sys/signalfd.h is not imported). */
#include <signal.h>
#include <sys/signalfd.h>
int CWGShim_signalfd(const sigset_t *mask);
/* open /dev/net/tun + TUNSETIFF (IFF_TAP with IFF_NO_PI, or IFF_TUN without it)
 * [+ TUNSETPERSIST]: ioctl is variadic and struct ifreq is a union. Returns the fd or -1. */
int CWGShim_tun_open(const char *name, int tap, int persist);
/* The same, with IFF_NO_PI (no 4-byte packet-information header) chosen separately. */
int CWGShim_tun_open_pi(const char *name, int tap, int no_pi, int persist);
/* TUNSETPERSIST on an open TUN descriptor (ioctl is variadic). */
int CWGShim_tun_set_persist(int fd, int on);
/* memmem(3), which needs _GNU_SOURCE. */
void *CWGShim_memmem(const void *haystack, size_t hlen, const void *needle, size_t nlen);

#include "CWGShim_io.h"
#endif

#ifndef CWGSHIM_H
#define CWGSHIM_H
/* What Swift cannot import directly: _GNU_SOURCE-only calls and constants,
 * and netlink's function-like macros. No logic lives here. */
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

/* Netlink alignment macros. */
size_t CWGShim_NLMSG_ALIGN(size_t len);
size_t CWGShim_NLA_ALIGN(size_t len);
size_t CWGShim_NLMSG_HDRLEN(void);
size_t CWGShim_NLA_HDRLEN(void);

#endif

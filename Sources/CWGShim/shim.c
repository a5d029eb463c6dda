#define _GNU_SOURCE
#include <sched.h>
#include "CWGShim.h"

const int CWGShim_CLONE_NEWUSER = CLONE_NEWUSER;
const int CWGShim_CLONE_NEWNET = CLONE_NEWNET;
const int CWGShim_CLONE_NEWNS = CLONE_NEWNS;
const int CWGShim_CLONE_NEWPID = CLONE_NEWPID;

int CWGShim_unshare(int flags) { return unshare(flags); }
int CWGShim_setns(int fd, int nstype) { return setns(fd, nstype); }


#include <nss.h>
int CWGShim_nss_configure_hosts(const char *services) { return __nss_configure_lookup("hosts", services); }

import Foundation
import Testing
import TestSupport

/// `wgns up` on machines and terminals that are not the usual ones.
extension UpTests {
    /// stdin a terminal that is not wgns's controlling terminal (a VM's
    /// serial console, or a pty opened without becoming the session's): the
    /// descriptors are passed through, no job control is attempted. On the
    /// controlling terminal the job gets the foreground.
    @Test func terminalThatIsNotTheControllingOne() throws {
        let f = try UpFixture()
        try f.write("pty.py", """
            import os, subprocess, sys
            m, s = os.openpty()  # not this process's controlling terminal
            p = subprocess.run(sys.argv[1:], stdin=s, capture_output=True)
            print("status", p.returncode, "out", p.stdout.decode().strip(), "err", p.stderr.decode().strip())
            """, mode: 0o644)
        let r = try f.sh(#"python3 pty.py "$W" up --backend wireguard-go job.conf -- sh -c 'test -t 0 && echo job-has-tty'"#)
        #expect(r.stdout == "status 0 out job-has-tty err \n", "\(r.stdout) \(r.stderr)")

        // script(1) makes the pty the controlling terminal: the job is its foreground group.
        let c = try f.sh(#"script -qec "\"$W\" up --backend wireguard-go job.conf -- sh -c 'echo pgid \$(ps -o pgid= -p \$\$) tpgid \$(ps -o tpgid= -p \$\$)'" /dev/null"#)
        #expect(c.status == 0, "\(c.stdout) \(c.stderr)")
        let words = c.stdout.split(whereSeparator: \.isWhitespace)
        #expect(words.count == 4 && words[1] == words[3], "\(c.stdout)")
    }

    /// `wgns up -v ... 2>&1 | head`: stderr is a pipe whose reader is gone.
    /// The step log's writes (the supervisor's, pid 1's inside) and the
    /// carrier's chatter, which wgns relays, fail with EPIPE; nothing ends
    /// for it: the job runs and its status comes back.
    @Test(arguments: ["slirp4netns", "pasta"])
    func verboseToAStderrWhoseReaderIsGone(carrier: String) throws {
        let f = try UpFixture()
        let r = try f.sh("""
            { "$W" up --backend wireguard-go -v --carrier \(carrier) job.conf -- sh -c 'sleep 0.3; echo ran > ran.txt; exit 7'; echo $? > status.txt; } 2>&1 | true
            cat status.txt ran.txt
            """)
        #expect(r.stdout == "7\nran\n", "\(r.stdout) \(r.stderr)")
    }

    /// A machine without /etc/resolv.conf: the job still gets one (its
    /// own, in a private /etc that keeps every other host entry), and the
    /// outer /etc is left as it was. The machine is simulated by an outer
    /// user + mount namespace with a tmpfs over /etc and every entry but
    /// resolv.conf bound back; wgns runs in a nested user namespace as the
    /// test user's own uid, as it would on that machine.
    @Test func machineWithoutResolvConf() throws {
        let f = try UpFixture()
        try f.write("hide.sh", """
            set -e
            d=$(mktemp -d)
            mount --rbind /etc "$d"
            mount -t tmpfs -o mode=0755 tmpfs /etc
            for e in "$d"/* "$d"/.[!.]*; do
              [ -e "$e" ] || [ -L "$e" ] || continue
              n=${e##*/}
              [ "$n" = resolv.conf ] && continue
              if [ -L "$e" ]; then cp -P "$e" "/etc/$n"
              elif [ -d "$e" ]; then mkdir "/etc/$n"; mount --rbind "$e" "/etc/$n"
              else : > "/etc/$n"; mount --bind "$e" "/etc/$n"; fi
            done
            test ! -e /etc/resolv.conf && test ! -L /etc/resolv.conf
            unshare -U --map-user=\(f.uid) --map-group=\(f.gid) "$@"
            test ! -e /etc/resolv.conf && echo "outer /etc unchanged"
            """, mode: 0o644)
        let r = try f.sh(#"unshare -Urm sh hide.sh "$W" up --backend wireguard-go job.conf -- sh -c 'cat /etc/resolv.conf; test -s /etc/passwd && echo passwd-ok'"#)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("nameserver 10.0.2.3\n"), "\(r.stdout)")
        #expect(r.stdout.contains("passwd-ok\n"), "\(r.stdout)")
        #expect(r.stdout.hasSuffix("outer /etc unchanged\n"), "\(r.stdout)")
    }

    /// The carrier's chatter ("sent tapfd=...", slirp4netns's seccomp
    /// warning) stays out of the terminal without -v, shows on stderr (never
    /// stdout) with -v, and a carrier that fails has its last words in the
    /// error line.
    @Test func carrierChatterCapturedAndShownOnFailure() throws {
        let f = try UpFixture()
        let quiet = try f.sh(#""$W" up --backend wireguard-go job.conf -- echo job-ran"#)
        #expect(quiet.status == 0, "\(quiet.stderr)")
        #expect(quiet.stdout == "job-ran\n")
        #expect(quiet.stderr == "", "\(quiet.stderr)")

        let verbose = try f.sh(#""$W" up --backend wireguard-go -v job.conf -- echo job-ran"#)
        #expect(verbose.status == 0, "\(verbose.stderr)")
        #expect(verbose.stdout == "job-ran\n")
        #expect(verbose.stderr.contains("tapfd="), "\(verbose.stderr)")

        // A carrier that says why it fails, then exits.
        let broken = try f.sh("""
            mkdir -p bin
            printf '#!/bin/sh\\necho "sent tapfd=5 for tap0"\\necho "cannot open tap0: broken on purpose" >&2\\nexit 1\\n' > bin/slirp4netns
            chmod 755 bin/slirp4netns
            PATH=$PWD/bin:$PATH "$W" up --backend wireguard-go --carrier slirp4netns job.conf -- echo job-ran
            """)
        #expect(broken.status == 1)
        #expect(broken.stdout == "")
        #expect(broken.stderr == "wgns: carrier slirp4netns failed to start (exit status 1): sent tapfd=5 for tap0; cannot open tap0: broken on purpose\n",
                "\(broken.stderr)")
    }

    /// A holder that fails before reading the plan (no user namespaces)
    /// races the supervisor's write of the plan: the error is still the
    /// holder's one line, never "write: Broken pipe" (was 4 runs in 30).
    @Test func holderFailureBeatsThePlanWrite() throws {
        let f = try UpFixture()
        let r = try f.sh("""
            unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_user_namespaces
              for i in $(seq 30); do "$W" up --backend wireguard-go job.conf -- echo job ran 2>&1 | cut -c1-40; done' | sort | uniq -c
            """)
        #expect(r.stdout.trimmingCharacters(in: .whitespaces) == "30 wgns: cannot create a user namespace: us\n", "\(r.stdout) \(r.stderr)")
    }
}

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
        let r = try f.sh(#"python3 pty.py "$W" up job.conf -- sh -c 'test -t 0 && echo job-has-tty'"#)
        #expect(r.stdout == "status 0 out job-has-tty err \n", "\(r.stdout) \(r.stderr)")

        // script(1) makes the pty the controlling terminal: the job is its foreground group.
        let c = try f.sh(#"script -qec "\"$W\" up job.conf -- sh -c 'echo pgid \$(ps -o pgid= -p \$\$) tpgid \$(ps -o tpgid= -p \$\$)'" /dev/null"#)
        #expect(c.status == 0, "\(c.stdout) \(c.stderr)")
        let words = c.stdout.split(whereSeparator: \.isWhitespace)
        #expect(words.count == 4 && words[1] == words[3], "\(c.stdout)")
    }
}

// Package deploy holds lispd's deployment examples and the tests that keep
// them working; it has no code of its own.
//
//   - lispd.service is the systemd unit. Its ExecStart, ExecStartPre and
//     ExecReload lines are run against a real lispd binary, and
//     `systemd-analyze verify` must accept the unit (when installed).
//   - keepalived/xtr-a1.conf and keepalived/xtr-a2.conf share site-a's
//     gateway between its two xTRs with VRRPv3 (advert_int 0.1: a backup
//     takes over about 0.35 s after the master dies), hand the gateway over
//     when lispd's drain track file goes non-zero, and run
//     keepalived/lispd-vrrp-notify on state changes (`lispctl failover
//     check` on becoming MASTER). `keepalived --config-test` must accept
//     them (when installed, in a private network namespace), their health
//     check must tell a running lispd from a stopped one, and the notify
//     hook must call lispctl as documented and always exit 0 in bounded
//     time. Package deploy/keepalived embeds these files; the netns lab
//     (lab/netns) renders its keepalived configs from them and measures
//     the take-over times.
//   - getting-started/*.toml are the three lispd configs of
//     docs/getting-started.md. They must load and build a daemon; on Linux
//     as root, TestGettingStarted runs the guide's three machines in
//     network namespaces with these very files and pings across LISP.
//
// The documents in docs/ include these files verbatim; the docs tests in
// internal/docgen check that the copies are exact.
package deploy

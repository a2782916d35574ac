// Package keepalived holds the documented keepalived files of site-a's
// two xTRs (docs/deployment.md) so that programs can use them as they are:
// the netns lab (lab/netns) renders its keepalived configs from them,
// substituting only names, addresses, priorities and paths, so the VRRP
// timers the lab measures are the documented ones.
//
//   - xtr-a1.conf, xtr-a2.conf: /etc/keepalived/keepalived.conf of the
//     two xTRs; they differ only in router_id and priority.
//   - lispd-vrrp-notify: the notify hook both configs name; it runs
//     `lispctl failover check` when the xTR becomes MASTER.
//
// The deploy package's tests run `keepalived --config-test` on the files.
package keepalived

import (
	"embed"
	"io/fs"
)

//go:embed xtr-a1.conf xtr-a2.conf lispd-vrrp-notify
var files embed.FS

// The documented files.
const (
	ConfigA1     = "xtr-a1.conf"
	ConfigA2     = "xtr-a2.conf"
	NotifyScript = "lispd-vrrp-notify"
)

// The values of the documented configs that depend on the machine: a
// renderer for another machine replaces these (and the router_id, the
// priority, the virtual_router_id and the instance name) and nothing else.
const (
	// Lispctl is where the health check and the notify hook run lispctl.
	Lispctl = "/usr/local/bin/lispctl"
	// NotifyPath is where the notify hook is installed.
	NotifyPath = "/etc/keepalived/lispd-vrrp-notify"
	// TrackFile is the drain track file, lispd's [failover]
	// vrrp-track-file.
	TrackFile = "/run/lispd/vrrp-drain"
	// LANInterface carries VRRP and the virtual address (the site side).
	LANInterface = "eth1"
	// RLOCInterface is the tracked RLOC-side interface.
	RLOCInterface = "eth0"
	// VirtualIP is site-a's gateway address.
	VirtualIP = "10.1.0.1/24"
	// Instance names the vrrp_instance.
	Instance = "site_a"
	// VirtualRouterID is the instance's VRID.
	VirtualRouterID = 51
)

// FS returns the documented files.
func FS() fs.FS { return files }

// File returns the content of one of the documented files (ConfigA1,
// ConfigA2, NotifyScript).
func File(name string) ([]byte, error) { return files.ReadFile(name) }

package config

import (
	"encoding/hex"
	"net/netip"
	"time"
)

// This file holds the sections of the xTR roles: [dataplane] (shared by
// the itr and etr roles), [itr] and [etr].

// DefaultDataPort is the LISP data-plane UDP port (RFC 9300).
const DefaultDataPort = 4341

// Dataplane is the [dataplane] section: the packet path of an xTR. All of
// its keys need a restart: they choose devices and sockets.
type Dataplane struct {
	RLOCs         []netip.Addr     `toml:"rlocs" required:"true" reload:"restart" doc:"This xTR's own RLOC addresses: the outer source of encapsulated packets, the ITR-RLOCs of Map-Requests (where Map-Replies come back), and the locators of the ETR's database that get the L (local) bit. At least one; at most 32."`
	DataListen    []netip.AddrPort `toml:"data-listen" default:"['0.0.0.0:4341']" port:"4341" reload:"restart" doc:"UDP addresses (ip or ip:port, port 4341 when omitted) of the LISP data-plane sockets; at most one per address family (an IPv6 one is IPv6-only)."`
	InstanceID    uint32           `toml:"instance-id" default:"0" reload:"restart" doc:"The 24-bit LISP Instance ID of the EID-side device: packets read from it are looked up and encapsulated in this instance."`
	TUNName       string           `toml:"tun-name" default:"'lisp0'" reload:"restart" doc:"Name of the EID-side TUN interface the daemon creates (at most 15 bytes; a %d is replaced by a number)."`
	TUNMTU        int              `toml:"tun-mtu" default:"1444" reload:"restart" doc:"MTU of the TUN interface: the path MTU minus the IPv6 encapsulation overhead (56 bytes) by default, so hosts learn the effective MTU. 576..9000."`
	TUNAddresses  []netip.Prefix   `toml:"tun-addresses" default:"[]" reload:"restart" doc:"Addresses with prefix length to put on the TUN interface (e.g. \"10.1.0.1/24\"); optional."`
	TUNRoutes     []netip.Prefix   `toml:"tun-routes" default:"[]" reload:"restart" doc:"Prefixes (remote EID space) routed into the TUN interface; optional."`
	NativeForward bool             `toml:"native-forward" default:"false" reload:"restart" doc:"Give the ITR a path for packets whose destination has a negative map-cache entry with the Natively-Forward (or No-Action) action: they are handed back to the kernel unencapsulated, through raw sockets marked with fwmark. So that they do not loop into the TUN, the tun-routes are then installed in routing table route-table with a policy rule \"not fwmark <fwmark> lookup <route-table>\" (priority 32000, per address family of the routes), and marked packets follow the main table. Off: the tun-routes go in the main table and such packets are dropped (counted as native_forward_no_path). Needs CAP_NET_RAW."`
	RouteTable    int              `toml:"route-table" default:"4341" reload:"restart" doc:"Routing table of the tun-routes when native-forward is on. 1..2147483647, not 253..255 (default, main, local)."`
	FwMark        uint32           `toml:"fwmark" default:"0x4341" reload:"restart" doc:"Firewall mark (SO_MARK) of natively forwarded packets when native-forward is on; packets with it skip route-table. Not 0; pick one no other software on the host uses."`
	PathMTU       int              `toml:"path-mtu" default:"1500" reload:"restart" doc:"Largest outer packet the RLOC network carries without fragmentation (RFC 9300 Section 7.1); bigger inner packets are fragmented (IPv4 without DF) or answered with ICMP. 576..65535."`
}

// MissPolicy is the ITR's handling of packets that miss the map-cache.
type MissPolicy string

// The miss policies.
const (
	// MissDrop drops packets while the Map-Request is outstanding.
	MissDrop MissPolicy = "drop"
	// MissQueue holds a few packets per destination and sends them when
	// the Map-Reply arrives.
	MissQueue MissPolicy = "queue"
)

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *MissPolicy) UnmarshalText(b []byte) error {
	switch MissPolicy(b) {
	case MissDrop, MissQueue:
		*p = MissPolicy(b)
		return nil
	}
	return &ValueError{What: "miss policy", Value: string(b), Msg: "unknown miss policy: want drop or queue"}
}

// ITR is the [itr] section: the Ingress Tunnel Router.
type ITR struct {
	MapResolvers            []netip.AddrPort `toml:"map-resolvers" required:"true" port:"4342" doc:"Map-Resolvers that Map-Requests are sent to (ip or ip:port, port 4342 when omitted), in order of preference: a retry goes to the next one."`
	MissPolicy              MissPolicy       `toml:"miss-policy" default:"'drop'" doc:"What happens to a packet whose destination misses the map-cache while the Map-Request is outstanding: \"drop\" (counted) or \"queue\" (held, up to queue-per-destination per destination, and sent when the Map-Reply arrives)."`
	QueuePerDestination     int              `toml:"queue-per-destination" default:"4" doc:"Packets held per destination by the queue miss policy. 1..1024."`
	QueueTotal              int              `toml:"queue-total" default:"1024" doc:"Packets held in all by the queue miss policy. 1..1048576."`
	MapRequestRate          int              `toml:"map-request-rate" default:"1000" doc:"Most Map-Requests sent per second (first transmissions and retries, all destinations together); at most one is outstanding per destination."`
	MapRequestRetries       int              `toml:"map-request-retries" default:"3" doc:"How many times an unanswered Map-Request is sent again before the ITR gives up (0: sent once). 0..10."`
	MapRequestTimeout       time.Duration    `toml:"map-request-timeout" default:"'1s'" doc:"Wait for a Map-Reply before the first retry; it doubles with each retry (up to 1 minute). RFC 9301 Section 5.3 recommends no more than one Map-Request per second per destination."`
	RLOCProbeInterval       time.Duration    `toml:"rloc-probe-interval" default:"'0s'" doc:"RLOC-probing period: the RLOCs of recently used mappings are probed with Map-Requests with the P bit; \"0s\" turns probing off. At least 1s when on."`
	IgnoreLocatorStatusBits bool             `toml:"ignore-locator-status-bits" default:"false" doc:"Disregard the Locator-Status-Bits of the packets this xTR decapsulates (RFC 9300 leaves acting on them to the ITR): a remote locator is then marked down only by RLOC-probing, SMRs and new mappings. Off: a packet from a remote site's locator that says another of its locators is down moves the traffic at once."`
	RLOCProbeCount          int              `toml:"rloc-probe-count" default:"3" doc:"Probes in a row an RLOC must leave unanswered to be marked unreachable (traffic then moves to the next locator). 1..100."`
	RefreshIfUsedWithin     time.Duration    `toml:"refresh-if-used-within" default:"'0s'" doc:"Expiry policy: a mapping about to expire that was used within this window is kept while a Map-Request refreshes it; \"0s\" lets mappings expire (the synchronization set may change it at run time)."`
	MapCacheSize            int              `toml:"map-cache-size" default:"1000000" reload:"restart" doc:"Most map-cache entries; at the bound the least recently used one is evicted."`
	EIDSpace                []EIDPrefix      `toml:"eid-space" default:"[]" doc:"The EID space this ITR takes mappings for from the mapping system (Map-Replies, pub/sub Map-Notifies), as \"prefix\" or \"iid:N/prefix\" with a 24-bit Instance ID N. A mapping with locators must lie inside one of these prefixes of its Instance ID; a negative mapping inside one or outside all of them (it may say that a destination outside the EID space is not an EID, not that EID space is not). Empty: unrestricted, except that a default route (0.0.0.0/0 or ::/0) with locators, which would capture every destination without a more specific mapping, is refused unless listed here. Refusals are counted (records_refused_eid_space, records_refused_default_route) and logged. A reload applies to the mappings installed from then on; those cached stay until they expire or are replaced. Whatever the EID space, loopback, link-local, broadcast, unspecified and multicast locators and this xTR's own RLOCs are never installed (locators_refused; loopback and link-local ones are when dataplane.rlocs holds such an address too, as in a lab on one host)."`
	Subscribe               bool             `toml:"subscribe" default:"false" doc:"Subscribe (RFC 9437 publish/subscribe) to the mappings the ITR asks for: its Map-Requests set the N bit with this xTR's xTR-ID, and a Map-Server with map-server.pubsub enabled answers with the mapping in a Map-Notify, then sends every change of it the same way, at once. A Map-Server that does not take the subscription answers as usual. Needs pubsub-key, or pubsub-unauthenticated."`
	SubscribeRefresh        time.Duration    `toml:"subscribe-refresh" default:"'1m'" doc:"How often a subscription whose mapping was used within the last interval is renewed with a subscribing Map-Request: a Map-Server that lost its subscriptions (a restart) has those in use back within this time. A subscription whose mapping left the map-cache is forgotten after as long. At least 1s."`
	PubSubKey               Secret           `toml:"pubsub-key" default:"''" doc:"The pre-shared pub/sub key that authenticates the Map-Server's pub/sub Map-Notifies and signs the Map-Notify-Acks: the Map-Server's map-server.pubsub.authentication-key. Required with subscribe, unless pubsub-unauthenticated."`
	PubSubKeyID             uint8            `toml:"pubsub-key-id" default:"0" doc:"The Key ID the Map-Server's pub/sub Map-Notifies must carry (its map-server.pubsub.key-id)."`
	PubSubAlgorithm         Algorithm        `toml:"pubsub-algorithm" default:"'hmac-sha-256'" doc:"Their authentication algorithm: \"hmac-sha-1\", \"hmac-sha-256\" or \"hmac-sha-256-hkdf\" (the Map-Server's map-server.pubsub.algorithm)."`
	PubSubUnauthenticated   bool             `toml:"pubsub-unauthenticated" default:"false" doc:"Also accept unsigned pub/sub Map-Notifies (Algorithm ID 0), acknowledge them unsigned, and let a publication repeat the last nonce, as lispers.net's Map-Server sends them (it neither signs nor checks). Anyone who can send to this xTR's control port can then rewrite its map-cache: use it on closed networks only."`
	XTRID                   XTRID            `toml:"xtr-id" default:"''" doc:"The 128-bit xTR-ID of the subscribing Map-Requests, as 32 hexadecimal digits; empty means a random one chosen at start (and kept across reloads). With the etr role the ITR uses the ETR's (etr.xtr-id), so that one xTR has one xTR-ID: leave this empty then."`
	SiteID                  uint64           `toml:"site-id" default:"0" doc:"The 64-bit site-ID sent with the xTR-ID. With the etr role the ITR sends etr.site-id: leave this 0 then."`
}

// XTRID is a 128-bit xTR-ID written as 32 hexadecimal digits; the empty
// string is the zero value, which means "random at each start".
type XTRID [16]byte

// String returns the 32 hex digits, or "" for the zero xTR-ID.
func (x XTRID) String() string {
	if x == (XTRID{}) {
		return ""
	}
	return hex.EncodeToString(x[:])
}

// MarshalText implements encoding.TextMarshaler.
func (x XTRID) MarshalText() ([]byte, error) { return []byte(x.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: "" or exactly 32 hex
// digits (not all zero).
func (x *XTRID) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*x = XTRID{}
		return nil
	}
	var v XTRID
	if len(b) != 32 {
		return &ValueError{What: "xTR-ID", Value: string(b), Msg: "want 32 hexadecimal digits, or \"\" for a random one"}
	}
	if _, err := hex.Decode(v[:], b); err != nil {
		return &ValueError{What: "xTR-ID", Value: string(b), Msg: "want 32 hexadecimal digits, or \"\" for a random one"}
	}
	if v == (XTRID{}) {
		return &ValueError{What: "xTR-ID", Value: string(b), Msg: "must not be all zero (write \"\" for a random one)"}
	}
	*x = v
	return nil
}

// The values of etr.decap-filter.
const (
	// DecapFilterOff decapsulates from every outer source.
	DecapFilterOff = "off"
	// DecapFilterOn decapsulates only from the RLOCs the ETR knows.
	DecapFilterOn = "on"
)

// ETR is the [etr] section: the Egress Tunnel Router.
type ETR struct {
	RegisterInterval time.Duration  `toml:"register-interval" default:"'1m'" doc:"Map-Register period; RFC 9301 Section 8.2 has ETRs register every 60 seconds (Map-Servers time registrations out after 3 minutes). At least 1s."`
	RecordTTL        time.Duration  `toml:"record-ttl" default:"'24h'" doc:"Record TTL of the registered mappings and of the ETR's Map-Replies: how long ITRs may cache them. A whole number of minutes; 24h (1440 minutes) is the value deployed ETRs use."`
	ProxyReply       bool           `toml:"proxy-reply" default:"false" doc:"Set the P bit of Map-Registers: ask the Map-Servers to answer Map-Requests on the ETR's behalf."`
	XTRID            XTRID          `toml:"xtr-id" default:"''" doc:"The 128-bit xTR-ID sent with Map-Registers, as 32 hexadecimal digits; empty means a random one at each start."`
	SiteID           uint64         `toml:"site-id" default:"0" doc:"The 64-bit site-ID sent with the xTR-ID."`
	DecapFilter      string         `toml:"decap-filter" default:"'off'" doc:"The decapsulation filter: \"on\" decapsulates only packets whose outer source is an RLOC this ETR knows (the database's locators and this xTR's rlocs, decap-filter-allow, the locators of the Map-Server's merged registrations when failover follows them, the ITR-RLOCs of the Map-Requests and RLOC-probes it answered, the remote ITRs its synchronization set's peers saw, and, with the itr role, the RLOCs of the map-cache entry for the packet's inner source); the others are dropped and counted as decap_drop_unknown_rloc. \"off\" accepts every source. Off by default because an ETR whose Map-Requests a Map-Server answers (proxy-reply) or forwards to another xTR of the site never sees the remote ITRs that are about to send, and would drop their packets: see the deployment guide before turning it on. Packets from the site's own EIDs and LISP-crypto packets are dropped either way."`
	DecapFilterAllow []netip.Prefix `toml:"decap-filter-allow" default:"[]" doc:"More prefixes the decapsulation filter accepts outer sources from (e.g. \"192.0.2.0/24\"): PITRs and RTRs, which never ask this ETR for a mapping, or the RLOC space of a provider whose routers are all trusted. Only used with decap-filter = \"on\"."`
	MapServers       []ETRMapServer `toml:"map-server" doc:"The Map-Servers to register with: one [[etr.map-server]] table each; at least one."`
	EIDs             []ETREID       `toml:"eid" doc:"The EID database: one [[etr.eid]] table per EID prefix; at least one."`
}

// ETRMapServer is one [[etr.map-server]] table.
type ETRMapServer struct {
	Address           netip.AddrPort `toml:"address" required:"true" port:"4342" doc:"The Map-Server's address (ip or ip:port, port 4342 when omitted)."`
	AuthenticationKey Secret         `toml:"authentication-key" required:"true" doc:"Shared secret that authenticates the Map-Registers and the Map-Server's Map-Notifies (the site key configured on the Map-Server)."`
	KeyID             uint8          `toml:"key-id" default:"0" doc:"The 8-bit RFC 9301 Key ID sent in Map-Registers (deployed routers use 0)."`
	Algorithm         Algorithm      `toml:"algorithm" default:"'hmac-sha-256'" doc:"Authentication algorithm: \"hmac-sha-1\" (Algorithm ID 1), \"hmac-sha-256\" (2) or \"hmac-sha-256-hkdf\" (3)."`
}

// ETREID is one [[etr.eid]] table: an EID prefix of the database.
type ETREID struct {
	Prefix EIDPrefix    `toml:"prefix" required:"true" doc:"The EID prefix, as \"prefix\" or \"iid:N/prefix\" with a 24-bit Instance ID N."`
	RLOCs  []ETRLocator `toml:"rlocs" doc:"The locators of the prefix, as inline tables {address = \"192.0.2.1\", priority = 1, weight = 50}; when absent, every address of dataplane.rlocs with priority 1 and weight 100. At most 255."`
}

// ETRLocator is one locator of an [[etr.eid]].
type ETRLocator struct {
	Address   netip.Addr `toml:"address" required:"true" doc:"The RLOC address."`
	Priority  uint8      `toml:"priority" default:"1" doc:"Unicast priority: ITRs use the reachable locators of the lowest priority; 255 means never for unicast."`
	Weight    uint8      `toml:"weight" default:"100" doc:"Unicast weight: share of the flows among locators of equal priority."`
	MPriority uint8      `toml:"m-priority" default:"255" doc:"Multicast priority (255: not for multicast)."`
	MWeight   uint8      `toml:"m-weight" default:"0" doc:"Multicast weight."`
}

// Locators returns the locators of e: its rlocs, or every address of the
// dataplane with priority 1 and weight 100 when it has none.
func (e ETREID) Locators(dp *Dataplane) []ETRLocator {
	if len(e.RLOCs) > 0 || dp == nil {
		return e.RLOCs
	}
	out := make([]ETRLocator, 0, len(dp.RLOCs))
	for _, a := range dp.RLOCs {
		out = append(out, ETRLocator{Address: a, Priority: 1, Weight: 100, MPriority: 255})
	}
	return out
}

package paper

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lispd/lispd/lab/netns"
)

// htons converts a 16-bit value to network byte order for AF_PACKET.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sniffer reads the IPv4 packets crossing one interface of a namespace
// with an AF_PACKET socket opened inside it, and hands each to a callback
// with its direction. It is how the netns lab observes what the kernel and
// lispd do with each ping without touching them.
type sniffer struct {
	fd   int
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// startSniffer opens the socket inside node's namespace, bound to ifname,
// and calls fn from one goroutine for every IPv4 packet: outgoing is true
// for packets the namespace transmits on the interface.
func startSniffer(node *netns.Node, ifname string, fn func(pkt []byte, outgoing bool, at time.Time)) (*sniffer, error) {
	s := &sniffer{fd: -1, stop: make(chan struct{})}
	err := node.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		s.fd = fd
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("paper: sniffing %s/%s: %w", node.Name(), ifname, err)
	}
	s.wg.Add(1)
	go func() { // RoutineSniffer
		defer s.wg.Done()
		buf := make([]byte, 65536)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			n, from, err := unix.Recvfrom(s.fd, buf, 0)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				return
			}
			sll, ok := from.(*unix.SockaddrLinklayer)
			if !ok || sll.Protocol != htons(unix.ETH_P_IP) {
				continue
			}
			fn(buf[:n], sll.Pkttype == unix.PACKET_OUTGOING, time.Now())
		}
	}()
	return s, nil
}

// close stops the sniffer and closes its socket.
func (s *sniffer) close() {
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		unix.Close(s.fd)
	})
}

// rawSender sends complete IPv4 packets (IP_HDRINCL) from inside a
// namespace: the hosts' pings, with the lab's ICMP identifiers and sequence
// numbers, through the namespace's own routing.
type rawSender struct{ fd int }

func newRawSender(node *netns.Node) (*rawSender, error) {
	r := &rawSender{fd: -1}
	err := node.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		r.fd = fd
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("paper: raw socket in %s: %w", node.Name(), err)
	}
	return r, nil
}

// send transmits pkt, an IPv4 packet to dst, without blocking: when the
// host's stack cannot take it (its socket buffer is full of packets
// waiting for the gateway's ARP resolution), the request is lost there,
// as a real host's would be, and the other flows keep their schedule.
func (r *rawSender) send(pkt []byte, dst netip.Addr) error {
	return unix.Sendto(r.fd, pkt, unix.MSG_DONTWAIT, &unix.SockaddrInet4{Addr: dst.As4()})
}

func (r *rawSender) close() { unix.Close(r.fd) }

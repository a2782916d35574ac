package mapcache

import (
	"context"
	"math"
	"time"
)

// ExpireDecision is what Config.OnExpire decides for an entry whose deadline
// has passed: DeleteNow, or Extend(d) to keep it for d more. Its value is
// the extension; zero or negative means delete.
type ExpireDecision time.Duration

// DeleteNow removes the expired entry (a Change of kind Expired is published).
const DeleteNow ExpireDecision = 0

// Extend keeps the expired entry for d more (for example while the ITR
// refreshes a mapping that was used recently); the hook is consulted again
// when the extension ends. The entry itself, including Expires, is
// unchanged; its Deadline moves. Extend(d) with d <= 0 is DeleteNow.
func Extend(d time.Duration) ExpireDecision {
	return ExpireDecision(max(d, 0))
}

// Extension returns the extension the decision grants, 0 for DeleteNow.
func (d ExpireDecision) Extension() time.Duration {
	return max(time.Duration(d), 0)
}

// heapItem is an expiry-heap element; at duplicates the entry's deadline so
// that sifting does not chase entry pointers.
type heapItem struct {
	at int64
	e  *Entry
}

func (w *writer) heapPush(e *Entry, at int64) {
	e.heapIdx = int32(len(w.heap))
	w.heap = append(w.heap, heapItem{at: at, e: e})
	w.heapUp(len(w.heap) - 1)
}

// heapRemove removes e from the heap if it is in it.
func (w *writer) heapRemove(e *Entry) {
	i := int(e.heapIdx)
	if i < 0 {
		return
	}
	last := len(w.heap) - 1
	if i != last {
		w.heapSwap(i, last)
	}
	w.heap[last] = heapItem{}
	w.heap = w.heap[:last]
	e.heapIdx = -1
	if i != last {
		w.heapFix(i)
	}
}

// heapReplace puts e (deadline at, math.MaxInt64 for none) where old was.
func (w *writer) heapReplace(old, e *Entry, at int64) {
	i := int(old.heapIdx)
	switch {
	case at == math.MaxInt64:
		w.heapRemove(old)
	case i < 0:
		w.heapPush(e, at)
	default:
		old.heapIdx = -1
		e.heapIdx = int32(i)
		w.heap[i] = heapItem{at: at, e: e}
		w.heapFix(i)
	}
}

// heapPopDue removes and returns the entry with the earliest deadline if
// that deadline is not after now.
func (w *writer) heapPopDue(now int64) *Entry {
	if len(w.heap) == 0 || w.heap[0].at > now {
		return nil
	}
	e := w.heap[0].e
	w.heapRemove(e)
	return e
}

// heapMin returns the earliest deadline of the entries in the heap or in a
// sweep's hands, math.MaxInt64 if none.
func (w *writer) heapMin() int64 {
	m := w.limboMin
	if len(w.heap) > 0 {
		m = min(m, w.heap[0].at)
	}
	return m
}

func (w *writer) heapFix(i int) {
	if !w.heapUp(i) {
		w.heapDown(i)
	}
}

func (w *writer) heapSwap(i, j int) {
	h := w.heap
	h[i], h[j] = h[j], h[i]
	h[i].e.heapIdx = int32(i)
	h[j].e.heapIdx = int32(j)
}

// heapUp moves item i towards the root and reports whether it moved.
func (w *writer) heapUp(i int) bool {
	moved := false
	for i > 0 {
		p := (i - 1) / 2
		if w.heap[p].at <= w.heap[i].at {
			break
		}
		w.heapSwap(i, p)
		i, moved = p, true
	}
	return moved
}

func (w *writer) heapDown(i int) {
	n := len(w.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && w.heap[r].at < w.heap[l].at {
			m = r
		}
		if w.heap[i].at <= w.heap[m].at {
			return
		}
		w.heapSwap(i, m)
		i = m
	}
}

// Sweep handles every entry whose deadline is not after now and returns how
// many it removed. For each, it calls Config.OnExpire (without holding any
// cache lock) and then removes the entry (publishing Expired) or extends its
// deadline; without a hook it removes them all. An entry replaced or deleted
// while the hook ran is left to its new state. Sweeps are serialized.
// Finally the time of the sweep becomes the clock Lookup checks deadlines
// against.
func (c *Cache) Sweep(now time.Time) int {
	c.sweepMu.Lock()
	defer c.sweepMu.Unlock()
	nowN := now.UnixNano()

	c.w.Lock()
	var due []*Entry
	for e := c.w.heapPopDue(nowN); e != nil; e = c.w.heapPopDue(nowN) {
		due = append(due, e)
	}
	if c.onExpire == nil || len(due) == 0 {
		n := c.removeLocked(due, Expired)
		c.coarse.Store(nowN)
		c.w.Unlock()
		return n
	}
	// Until the second critical section the due entries are out of the heap
	// (so neither swept again nor sampled for eviction) but still in their
	// tables and visible to lookups; limboMin keeps the deadline watermark
	// that lookups rely on below their deadlines.
	c.w.limboMin = due[0].deadline.Load()
	c.w.Unlock()

	ext := make([]time.Duration, len(due))
	for i, e := range due {
		ext[i] = c.onExpire(e).Extension()
	}

	c.w.Lock()
	defer c.w.Unlock()
	c.w.limboMin = math.MaxInt64
	var gone []*Entry
	for i, e := range due {
		switch {
		case e.state != entryLive:
			// Replaced or deleted while the hook ran.
		case ext[i] > 0:
			at := nowN + int64(ext[i])
			if at < nowN { // overflow
				at = math.MaxInt64 - 1
			}
			e.deadline.Store(at)
			c.w.heapPush(e, at)
			c.extended.Add(1)
		default:
			gone = append(gone, e)
		}
	}
	n := c.removeLocked(gone, Expired)
	if n == 0 {
		// Extensions raise the watermark without a table change.
		c.minDeadline.Store(c.w.heapMin())
	}
	c.coarse.Store(nowN)
	return n
}

// Run sweeps expired entries every SweepPeriod, using the cache clock, until
// ctx is done; then it returns nil, leaving no goroutine behind. Only one Run
// may be active at a time (ErrRunning otherwise). Typical use is
// go c.Run(ctx).
func (c *Cache) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer c.running.Store(false)
	t := time.NewTicker(c.sweepPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.Sweep(c.clock())
		}
	}
}

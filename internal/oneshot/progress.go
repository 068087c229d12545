package oneshot

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/connprobe/connprobe/probe"
)

// Progress keeps one status line on a terminal while a run goes: checks
// done of all, time elapsed and the check longest in flight. It is for a
// terminal only (it redraws with carriage returns); the caller decides.
type Progress struct {
	w     io.Writer
	width int
	total int
	began time.Time

	mu      sync.Mutex
	done    int
	running []*probe.Check // in start order
	shown   bool
	stopped bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// progressTick is how often the elapsed time is redrawn.
const progressTick = 250 * time.Millisecond

// NewProgress starts the line on w for total checks; width bounds it (0:
// 80 columns).
func NewProgress(w io.Writer, total, width int) *Progress {
	if width <= 0 {
		width = 80
	}
	p := &Progress{w: w, width: width, total: total, began: time.Now(), stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressTick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.mu.Lock()
				p.draw()
				p.mu.Unlock()
			case <-p.stop:
				return
			}
		}
	}()
	return p
}

// Started notes a check in flight.
func (p *Progress) Started(c *probe.Check) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = append(p.running, c)
	p.draw()
}

// Finished notes a check done.
func (p *Progress) Finished(c *probe.Check) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.running {
		if r == c {
			p.running = append(p.running[:i], p.running[i+1:]...)
			break
		}
	}
	p.done++
	p.draw()
}

// Around clears the line, runs write (output to the same terminal) and
// draws the line again below it.
func (p *Progress) Around(write func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	write()
	p.draw()
}

// Stop clears the line for good.
func (p *Progress) Stop() {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.clear()
	p.mu.Unlock()
	close(p.stop)
	p.wg.Wait()
}

func (p *Progress) clear() {
	if p.shown {
		io.WriteString(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// draw rewrites the line in place: "[12/205] 0:14 running clover/emv 23105/udp (+3 more)".
func (p *Progress) draw() {
	if p.stopped {
		return
	}
	el := time.Since(p.began)
	line := fmt.Sprintf("[%d/%d] %d:%02d", p.done, p.total, int(el.Minutes()), int(el.Seconds())%60)
	if len(p.running) > 0 {
		c := p.running[0]
		name := c.Name
		if c.Profile != "" {
			name = c.Profile + "/" + name
		}
		line += " running " + name + " " + c.Host + ":" + strconv.Itoa(c.Port) + "/" + c.Network
		if n := len(p.running) - 1; n > 0 {
			line += fmt.Sprintf(" (+%d more)", n)
		}
	} else if p.done < p.total {
		line += " waiting for a host's pacing"
	}
	// One column short of the width: a full line would wrap on some terminals.
	io.WriteString(p.w, "\r\x1b[K"+cut(line, p.width-1))
	p.shown = true
}

package lease

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fence's clock counts the time the machine spent suspended: it reads
// the kernel's boot time clock (CLOCK_BOOTTIME), as /proc/uptime does. Go's
// monotonic clock stops during a suspend, so a replica resumed after a
// suspend longer than its lease would still trust the lease. (A test
// cannot suspend the machine; agreeing with /proc/uptime shows the clock
// is the one that counts suspend, where the monotonic time since the
// process started would not.)
func TestFenceClockIsTheBootClock(t *testing.T) {
	f := NewFence(&fakeLock{}, time.Hour)
	text, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	seconds, err := strconv.ParseFloat(strings.Fields(string(text))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	uptime := time.Duration(seconds * float64(time.Second))
	now, err := f.now()
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(now); got < uptime-2*time.Second || got > uptime+2*time.Second {
		t.Errorf("the fence's clock reads %s, the boot clock (/proc/uptime) %s", got, uptime)
	}
}

package events

import (
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// Clock converts the kernel's CLOCK_BOOTTIME timestamps to wall-clock time.
// The zero Clock treats boot time as the Unix epoch.
type Clock struct {
	offset int64 // CLOCK_REALTIME - CLOCK_BOOTTIME, in nanoseconds
}

// clockSamples is how many times NewClock reads the clocks; it keeps the
// reading whose CLOCK_REALTIME bracket is narrowest.
const clockSamples = 5

// NewClock measures CLOCK_REALTIME - CLOCK_BOOTTIME once, now. Later steps
// of the wall clock (settimeofday, NTP) are not followed: times stay on the
// scale of the moment NewClock ran, as with bcc and bpftrace.
//
// It reads CLOCK_BOOTTIME between two readings of CLOCK_REALTIME and takes
// the midpoint of the narrowest of a few such brackets, so the error is at
// most half that bracket (well under a microsecond).
//
// clock_gettime(2) fails only for a bad pointer or a clock the kernel lacks,
// and CLOCK_BOOTTIME exists since Linux 2.6.39: should it fail anyway, the
// Clock returned is the zero Clock, whose times are obviously wrong (1970).
func NewClock() Clock {
	best := int64(math.MaxInt64)
	var c Clock
	for range clockSamples {
		var r1, boot, r2 unix.Timespec
		if unix.ClockGettime(unix.CLOCK_REALTIME, &r1) != nil ||
			unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot) != nil ||
			unix.ClockGettime(unix.CLOCK_REALTIME, &r2) != nil {
			continue
		}
		width := r2.Nano() - r1.Nano()
		if width < 0 || width >= best {
			continue // the wall clock stepped back, or a wider bracket
		}
		best = width
		c.offset = r1.Nano() + width/2 - boot.Nano()
	}
	return c
}

// ClockWithOffset returns a Clock that adds ns (realtime - boottime, in
// nanoseconds) to boot times. It is for tests and replays.
func ClockWithOffset(ns int64) Clock { return Clock{offset: ns} }

// Offset returns realtime - boottime in nanoseconds.
func (c Clock) Offset() int64 { return c.offset }

// Time returns the wall-clock time of a CLOCK_BOOTTIME timestamp.
func (c Clock) Time(bootNS uint64) time.Time {
	return time.Unix(0, int64(bootNS)+c.offset)
}

package events

import (
	"math"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestClockWithOffset(t *testing.T) {
	tests := []struct {
		offset int64
		boot   uint64
		want   time.Time
	}{
		{0, 0, time.Unix(0, 0)},
		{testTime.UnixNano() - testBootNS, testBootNS, testTime},
		{1_700_000_000_000_000_000, 5_000_000_001, time.Unix(1_700_000_005, 1)},
		{-10, 3, time.Unix(0, -7)},
	}
	for _, tt := range tests {
		c := ClockWithOffset(tt.offset)
		if c.Offset() != tt.offset {
			t.Errorf("ClockWithOffset(%d).Offset() = %d", tt.offset, c.Offset())
		}
		if got := c.Time(tt.boot); !got.Equal(tt.want) {
			t.Errorf("ClockWithOffset(%d).Time(%d) = %v, want %v", tt.offset, tt.boot, got, tt.want)
		}
	}
	// Any boot time converts without panicking, even a nonsense one.
	_ = ClockWithOffset(math.MaxInt64).Time(math.MaxUint64)
}

func TestNewClock(t *testing.T) {
	c := NewClock()
	var boot unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	got := c.Time(uint64(boot.Nano()))
	// Generous: only a stepped wall clock or a very slow machine differ by
	// more than microseconds.
	if d := now.Sub(got); d < 0 || d > 50*time.Millisecond {
		t.Errorf("NewClock().Time(CLOCK_BOOTTIME now) = %v, time.Now() = %v (%v apart)", got, now, d)
	}
	// Two clocks agree to well within a millisecond.
	if d := NewClock().Offset() - c.Offset(); d < -int64(time.Millisecond) || d > int64(time.Millisecond) {
		t.Errorf("two NewClock offsets differ by %v", time.Duration(d))
	}
}

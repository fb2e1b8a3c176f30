package receiver

import (
	"context"
	"testing"
	"time"

	"github.com/assetsup/webhooks/bench/internal/stats"
)

func TestLedgerCountsEveryDeliveryOnce(t *testing.T) {
	l := NewLedger()
	t0 := time.Now()
	a, b := Key{"e1", "w1"}, Key{"e2", "w1"}
	l.Expect("p", a, t0)
	l.Expect("p", b, t0)
	if v := l.Receive(a, true, t0.Add(10*time.Millisecond)); v != Accepted {
		t.Fatalf("first receipt: %v", v)
	}
	if got, want := l.Progress("p"); got != 1 || want != 2 {
		t.Fatalf("progress %d/%d", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx, "p"); err == nil {
		t.Fatal("Wait returned with a delivery missing")
	}
	if v := l.Verify(); v.OK || v.Missing != 1 {
		t.Fatalf("a missing delivery must fail the run: %+v", v)
	}
	l.Receive(b, true, t0.Add(30*time.Millisecond))
	if err := l.Wait(context.Background(), "p"); err != nil {
		t.Fatal(err)
	}
	v := l.Verify()
	if !v.OK || v.Received != 2 {
		t.Fatalf("verification %+v", v)
	}
	s := l.Stats("p")
	if s.Received != 2 || s.LastReceipt.Sub(s.FirstTrigger) != 30*time.Millisecond {
		t.Fatalf("stats %+v", s)
	}
	if s.LongestGap != 20*time.Millisecond {
		t.Fatalf("longest gap %v, want 20ms (10 ms to the first receipt, then 20 ms)", s.LongestGap)
	}
	if sum := stats.Summarize(s.Latencies); sum.Min != 10 || sum.Max != 30 {
		t.Fatalf("latencies %+v", sum)
	}
}

func TestLedgerDuplicateFailsTheRun(t *testing.T) {
	l := NewLedger()
	k := Key{"e1", "w1"}
	l.Expect("p", k, time.Now())
	l.Receive(k, true, time.Now())
	if v := l.Receive(k, true, time.Now()); v != Duplicate {
		t.Fatalf("second receipt: %v", v)
	}
	v := l.Verify()
	if v.OK || v.Duplicates != 1 || v.Missing != 0 {
		t.Fatalf("a duplicated delivery must fail the run: %+v", v)
	}
}

func TestLedgerBadSignatureAndStraysFailTheRun(t *testing.T) {
	l := NewLedger()
	k := Key{"e1", "w1"}
	l.Expect("p", k, time.Now())
	if v := l.Receive(k, false, time.Now()); v != BadSignature {
		t.Fatalf("bad signature: %v", v)
	}
	// A bad signature breaks the run at once: Wait does not sit out its deadline.
	if err := l.Wait(context.Background(), "p"); err != errBroken {
		t.Fatalf("Wait after a bad signature: %v", err)
	}
	v := l.Verify()
	if v.OK || v.BadSignatures != 1 || v.Missing != 1 {
		t.Fatalf("a badly signed delivery must fail the run (and not count as received): %+v", v)
	}

	l2 := NewLedger()
	if got := l2.Receive(Key{"nobody", "asked"}, true, time.Now()); got != Unexpected {
		t.Fatalf("stray: %v", got)
	}
	if v := l2.Verify(); v.OK || v.Unexpected != 1 {
		t.Fatalf("an unexpected delivery must fail the run: %+v", v)
	}
}

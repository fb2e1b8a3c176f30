package procfs

import "testing"

func TestParseStat(t *testing.T) {
	st, err := parseStat("1234 (temporal server) S 99 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 30 0")
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "temporal server" || st.ppid != 99 || st.utime != 250 || st.stime != 50 || st.cutime != 7 || st.cstime != 3 {
		t.Fatalf("%+v", st)
	}
}

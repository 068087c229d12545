package probe

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lbFTP is a minimal in-test FTP server on 127.0.0.1: enough of RFC 959,
// 2428 and 4217 for the probe, with switches for the misbehaviour each test
// needs. Every wait in it is bounded.
type lbFTP struct {
	greeting string // raw greeting; default a single 220 line
	noEPSV   bool   // answer EPSV with 502
	pasvHost string // host a PASV reply names (dotted); default 127.0.0.1
	dataHost string // where the passive listener listens; default 127.0.0.1
	// pasvPort, when set, is the port EPSV/PASV name instead of a listener.
	pasvPort  int
	user      string // required user; empty: anonymous only
	pass      string // required password
	echoPass  bool   // a refused login echoes the password it got (hostile)
	noAuthTLS bool   // answer AUTH TLS with 500
	tls       *tls.Config
	listCode  string // reply to LIST instead of 150 (e.g. "550 No such file")
	listing   []byte // what LIST and RETR send
	files     map[string]int

	mu        sync.Mutex
	dataConns []string // local addresses of accepted data connections
	logins    []string // "user" of each successful login
	resumed   []bool   // whether each TLS data connection resumed the session
	port      int
}

func (s *lbFTP) start(t *testing.T) *lbFTP {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lbServe(t, ln, s.handle)
	s.port = ln.Addr().(*net.TCPAddr).Port
	return s
}

func (s *lbFTP) check() *Check {
	return &Check{Name: "t", Kind: "ftp", Host: "127.0.0.1", Port: s.port, IPFamily: FamilyIPv4, Timeout: 3 * time.Second}
}

func (s *lbFTP) snapshot() (data []string, logins []string, resumed []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.dataConns...), append([]string(nil), s.logins...), append([]bool(nil), s.resumed...)
}

func (s *lbFTP) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	greeting := s.greeting
	if greeting == "" {
		greeting = "220 lbFTP test server ready\r\n"
	}
	if _, err := io.WriteString(c, greeting); err != nil {
		return
	}
	var conn net.Conn = c
	br := bufio.NewReader(conn)
	reply := func(format string, a ...any) { _, _ = fmt.Fprintf(conn, format+"\r\n", a...) }
	var user string
	var dataLn net.Listener
	defer func() {
		if dataLn != nil {
			dataLn.Close()
		}
	}()
	protected := false
	for i := 0; i < 50; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		switch strings.ToUpper(cmd) {
		case "AUTH":
			if s.noAuthTLS || s.tls == nil {
				reply("500 AUTH not understood")
				continue
			}
			reply("234 Proceed with negotiation.")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			conn = tc
			br = bufio.NewReader(conn)
		case "PBSZ":
			reply("200 PBSZ=0")
		case "PROT":
			protected = arg == "P"
			reply("200 Protection level set")
		case "USER":
			user = arg
			reply("331 Please specify the password.")
		case "PASS":
			ok := (s.user == "" && user == "anonymous") || (s.user != "" && user == s.user && arg == s.pass)
			switch {
			case ok:
				s.mu.Lock()
				s.logins = append(s.logins, user)
				s.mu.Unlock()
				reply("230 Login successful.")
			case s.echoPass:
				reply("530 Login incorrect: password %s is wrong", arg)
			default:
				reply("530 Login incorrect.")
			}
		case "TYPE":
			reply("200 Switching to Binary mode.")
		case "SIZE":
			if n, ok := s.files[arg]; ok {
				reply("213 %d", n)
			} else {
				reply("550 Could not get file size.")
			}
		case "EPSV", "PASV":
			if cmd == "EPSV" && s.noEPSV {
				reply("502 EPSV unsupported here")
				continue
			}
			port := s.pasvPort
			if port == 0 {
				host := s.dataHost
				if host == "" {
					host = "127.0.0.1"
				}
				if dataLn, err = net.Listen("tcp4", host+":0"); err != nil {
					reply("425 cannot listen")
					continue
				}
				port = dataLn.Addr().(*net.TCPAddr).Port
			}
			if cmd == "EPSV" {
				reply("229 Entering Extended Passive Mode (|||%d|)", port)
				continue
			}
			host := s.pasvHost
			if host == "" {
				host = "127.0.0.1"
			}
			reply("227 Entering Passive Mode (%s,%d,%d).", strings.ReplaceAll(host, ".", ","), port>>8, port&0xff)
		case "LIST", "NLST", "RETR":
			if s.listCode != "" {
				reply("%s", s.listCode)
				continue
			}
			if dataLn == nil {
				reply("425 Use PASV or EPSV first.")
				continue
			}
			reply("150 Here comes the data.")
			if s.sendData(dataLn, protected, cmd, arg) {
				reply("226 Transfer complete.")
			} else {
				reply("426 Failure writing network stream.")
			}
			dataLn.Close()
			dataLn = nil
		case "QUIT":
			reply("221 Goodbye.")
			return
		default:
			reply("502 Command unrecognized.")
		}
	}
}

// sendData accepts one data connection and sends the listing (or a file of
// the size files names) over it; it reports whether all of it was sent.
func (s *lbFTP) sendData(ln net.Listener, protected bool, cmd, arg string) bool {
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	d, err := ln.Accept()
	if err != nil {
		return false
	}
	defer d.Close()
	_ = d.SetDeadline(time.Now().Add(5 * time.Second))
	s.mu.Lock()
	s.dataConns = append(s.dataConns, d.LocalAddr().String())
	s.mu.Unlock()
	var w io.Writer = d
	if protected {
		tc := tls.Server(d, s.tls)
		if tc.Handshake() != nil {
			return false
		}
		s.mu.Lock()
		s.resumed = append(s.resumed, tc.ConnectionState().DidResume)
		s.mu.Unlock()
		defer tc.Close()
		w = tc
	}
	payload := s.listing
	if cmd == "RETR" {
		payload = make([]byte, s.files[arg])
	}
	_, err = w.Write(payload)
	return err == nil
}

func lbFTPRun(t *testing.T, c *Check) (Result, time.Duration) {
	t.Helper()
	begin := time.Now()
	r := lbRun1(t, c)
	return r, time.Since(begin)
}

func TestFTPGood(t *testing.T) {
	s := (&lbFTP{greeting: "220-Welcome\r\n220-to the test\r\n220 lbFTP 1.0 ready\r\n", listing: []byte("-rw-r--r-- 1 ftp ftp 5 Jan 1 00:00 a.txt\r\n")}).start(t)
	r, _ := lbFTPRun(t, s.check())
	lbExpect(t, r, true, ReasonOK, PhaseData, `greeting "Welcome"`, "logged in as anonymous", "EPSV port", "listing of 42 bytes")
	f := r.Facts.FTPFacts
	if f == nil || f.PassiveCommand != "EPSV" || f.DataBytes != 42 || f.User != "anonymous" || f.DataCommand != "LIST" {
		t.Errorf("facts %+v", f)
	}
	data, logins, _ := s.snapshot()
	if len(data) != 1 || len(logins) != 1 {
		t.Errorf("data connections %v, logins %v; want one of each", data, logins)
	}
	for _, p := range []Phase{PhaseConnect, PhaseBanner, PhaseLogin, PhaseData} {
		if _, ok := r.TimingOf(p); !ok {
			t.Errorf("no %s timing: %+v", p, r.Timings)
		}
	}
	b, err := json.Marshal(r.Facts)
	if err != nil || !strings.Contains(string(b), `"passive_port":`) {
		t.Errorf("facts JSON %s, %v", b, err)
	}
}

func TestFTPNeverGreets(t *testing.T) {
	port := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_, _ = io.Copy(io.Discard, c) // until the probe or the test closes it
	})
	c := &Check{Name: "t", Kind: "ftp", Host: "127.0.0.1", Port: port, Timeout: time.Second}
	r, took := lbFTPRun(t, c)
	lbExpect(t, r, false, ReasonProtocol, PhaseBanner, "accepted but the server sent nothing in")
	if took > 2*time.Second {
		t.Errorf("took %s for a 1s check", took)
	}
}

// lbAllocDuring reports the bytes allocated while fn ran (the whole process:
// a loose bound, enough to catch unbounded buffering).
func lbAllocDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestFTPEndlessGreeting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pause time.Duration
		want  string
	}{
		// As fast as it can: the line bound ends it.
		{"fast", 0, "more than 200 lines"},
		// A trickle: the deadline ends it.
		{"trickle", 20 * time.Millisecond, "did not finish it in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := lbRawServer(t, func(c net.Conn) {
				defer c.Close()
				_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
				for i := 0; i < 1_000_000; i++ {
					if _, err := io.WriteString(c, "220-still greeting you, line "+strconv.Itoa(i)+"\r\n"); err != nil {
						return
					}
					if tc.pause > 0 {
						time.Sleep(tc.pause)
					}
				}
			})
			c := &Check{Name: "t", Kind: "ftp", Host: "127.0.0.1", Port: port, Timeout: time.Second}
			var r Result
			var took time.Duration
			alloc := lbAllocDuring(func() { r, took = lbFTPRun(t, c) })
			lbExpect(t, r, false, ReasonProtocol, PhaseBanner, tc.want)
			if took > 2*time.Second {
				t.Errorf("took %s for a 1s check", took)
			}
			if alloc > 32<<20 {
				t.Errorf("allocated %d bytes reading a greeting", alloc)
			}
		})
	}
}

func TestFTPHugeLine(t *testing.T) {
	port := lbRawServer(t, func(c net.Conn) {
		defer c.Close()
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(c, "220 "+strings.Repeat("A", 1<<20)+"\r\n")
	})
	c := &Check{Name: "t", Kind: "ftp", Host: "127.0.0.1", Port: port, Timeout: 2 * time.Second}
	var r Result
	alloc := lbAllocDuring(func() { r, _ = lbFTPRun(t, c) })
	lbExpect(t, r, false, ReasonProtocol, PhaseBanner, "longer than 8192 bytes")
	if alloc > 32<<20 {
		t.Errorf("allocated %d bytes reading one line", alloc)
	}
}

func TestFTPGreetingRefusals(t *testing.T) {
	for _, tc := range []struct{ name, greeting, want string }{
		{"too many users", "421 Too many users, sorry\r\n", "refused service: 421 Too many users, sorry"},
		{"not 220", "500 go away\x07\r\n", `unexpected greeting (want 220): 500 go away\x07`},
		{"not ftp", "SSH-2.0-OpenSSH_9.6\r\n", `an SSH server answered, not FTP: "SSH-2.0-OpenSSH_9.6"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := (&lbFTP{greeting: tc.greeting}).start(t)
			r, _ := lbFTPRun(t, s.check())
			lbExpect(t, r, false, ReasonProtocol, PhaseBanner, tc.want)
		})
	}
}

// The PASV reply names another loopback address (127.0.0.2) while the data
// listener is on 127.0.0.1 only: success proves the probe connected to the
// control address. (A routable address there could send test traffic off
// this host if the code regressed; TestFTPPassiveTarget covers 203.0.113.9
// without dialing.)
func TestFTPPASVAddressIgnored(t *testing.T) {
	s := (&lbFTP{noEPSV: true, pasvHost: "127.0.0.2", listing: []byte("x\r\n")}).start(t)
	r, _ := lbFTPRun(t, s.check())
	lbExpect(t, r, true, ReasonOK, PhaseData, "PASV port", "PASV named 127.0.0.2; connected to the control address instead")
	data, _, _ := s.snapshot()
	if len(data) != 1 || !strings.HasPrefix(data[0], "127.0.0.1:") {
		t.Errorf("data connections arrived at %v, want one at 127.0.0.1", data)
	}
	if f := r.Facts.FTPFacts; f == nil || f.PASVAddress != "127.0.0.2" || !strings.HasPrefix(f.DataAddress, "127.0.0.1:") {
		t.Errorf("facts %+v", f)
	}
}

func TestFTPTrustPASVAddress(t *testing.T) {
	s := (&lbFTP{noEPSV: true, pasvHost: "127.0.0.2", dataHost: "127.0.0.2", listing: []byte("x\r\n")}).start(t)
	c := s.check()
	own(&c.FTP).TrustPASVAddress = true
	r, _ := lbFTPRun(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseData)
	data, _, _ := s.snapshot()
	if len(data) != 1 || !strings.HasPrefix(data[0], "127.0.0.2:") {
		t.Errorf("data connections arrived at %v, want one at 127.0.0.2", data)
	}
}

// TestFTPPassiveTarget checks the data target chosen for a PASV reply naming
// a foreign address, over an in-memory pipe: nothing is dialed.
func TestFTPPassiveTarget(t *testing.T) {
	for _, trust := range []bool{false, true} {
		cli, srv := net.Pipe()
		go func() {
			defer srv.Close()
			_ = srv.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(srv)
			for _, answer := range []string{"502 no EPSV\r\n", "227 Entering Passive Mode (203,0,113,9,117,48)\r\n"} {
				if _, err := br.ReadString('\n'); err != nil {
					return
				}
				if _, err := io.WriteString(srv, answer); err != nil {
					return
				}
			}
		}()
		_ = cli.SetDeadline(time.Now().Add(5 * time.Second))
		c := &Check{Host: "192.0.2.1", Port: 21, FTP: &FTPOptions{TrustPASVAddress: trust}}
		s := &ftpSession{t: Target{Check: c, Addr: net.ParseIP("192.0.2.1"), Family: FamilyIPv4},
			r: &Result{}, facts: &FTPFacts{}, ctl: newFTPControl(cli, nil)}
		dt, err := s.passive()
		cli.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := "192.0.2.1:30000"
		if trust {
			want = "203.0.113.9:30000"
		}
		if dt.HostPort() != want || s.facts.PASVAddress != "203.0.113.9" || s.facts.PassiveCommand != "PASV" {
			t.Errorf("trust=%v: target %s (want %s), facts %+v", trust, dt.HostPort(), want, s.facts)
		}
		if c.Port != 21 {
			t.Errorf("the check's own port changed to %d", c.Port)
		}
	}
}

func TestFTPParsePassive(t *testing.T) {
	for _, tc := range []struct {
		text string
		port int
	}{
		{"Entering Extended Passive Mode (|||6446|)", 6446},
		{"EPSV ok (!!!21!)", 21},
		{"(|||0|)", 0},
		{"(|||70000|)", 0},
		{"(||1|2|)", 0},
		{"no parens", 0},
		{"(|)", 0},
	} {
		p, err := parseEPSV(tc.text)
		if p != tc.port || (err == nil) != (tc.port != 0) {
			t.Errorf("parseEPSV(%q) = %d, %v; want %d", tc.text, p, err, tc.port)
		}
	}
	for _, tc := range []struct {
		text string
		ip   string
		port int
	}{
		{"Entering Passive Mode (10,1,2,2,117,50).", "10.1.2.2", 30002},
		{"=10,1,2,2,0,21", "10.1.2.2", 21},
		{"(10,1,2,2,0,0)", "", 0},
		{"(10,1,2,256,1,1)", "", 0},
		{"(10,1,2,1,1)", "", 0},
		{"nothing", "", 0},
	} {
		ip, p, err := parsePASV(tc.text)
		if p != tc.port || (err == nil) != (tc.port != 0) || (tc.ip != "" && ip.String() != tc.ip) {
			t.Errorf("parsePASV(%q) = %v, %d, %v; want %s %d", tc.text, ip, p, err, tc.ip, tc.port)
		}
	}
}

func TestFTPEPSVUnsupported(t *testing.T) {
	s := (&lbFTP{noEPSV: true, listing: []byte("a\r\nb\r\n")}).start(t)
	r, _ := lbFTPRun(t, s.check())
	lbExpect(t, r, true, ReasonOK, PhaseData, "PASV port", "listing of 6 bytes")
	if f := r.Facts.FTPFacts; f == nil || f.PassiveCommand != "PASV" || f.PASVAddress != "" {
		t.Errorf("facts %+v", f)
	}
}

func TestFTPLoginRefused(t *testing.T) {
	s := (&lbFTP{user: "alice", pass: "right"}).start(t) // anonymous is refused
	r, _ := lbFTPRun(t, s.check())
	lbExpect(t, r, false, ReasonProtocol, PhaseLogin, `login refused for user "anonymous": 530 Login incorrect.`)
}

func lbFTPPasswordFile(t *testing.T, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ftp.pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lbNoSecret fails when the secret appears anywhere in the result.
func lbNoSecret(t *testing.T, r Result, secret string) {
	t.Helper()
	b, err := json.Marshal(struct {
		R Result
		F Facts
	}{r, r.Facts})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.Detail, secret) || strings.Contains(string(b), secret) || strings.Contains(fmt.Sprintf("%+v", r), secret) {
		t.Errorf("the password appears in the result: %s", r.Detail)
	}
}

func TestFTPCredentials(t *testing.T) {
	const pw = "s3cret-Pw!"
	t.Run("password file", func(t *testing.T) {
		s := (&lbFTP{user: "alice", pass: pw, listing: []byte("x")}).start(t)
		c := s.check()
		c.Credentials = &Credentials{User: "alice", PasswordFile: lbFTPPasswordFile(t, pw)}
		r, _ := lbFTPRun(t, c)
		lbExpect(t, r, true, ReasonOK, PhaseData, "logged in as alice")
		lbNoSecret(t, r, pw)
		if _, logins, _ := s.snapshot(); len(logins) != 1 || logins[0] != "alice" {
			t.Errorf("logins %v", logins)
		}
	})
	t.Run("password env", func(t *testing.T) {
		t.Setenv("LBFTP_TEST_PW", pw)
		s := (&lbFTP{user: "alice", pass: pw, listing: []byte("x")}).start(t)
		c := s.check()
		c.Credentials = &Credentials{User: "alice", PasswordEnv: "LBFTP_TEST_PW"}
		r, _ := lbFTPRun(t, c)
		lbExpect(t, r, true, ReasonOK, PhaseData, "logged in as alice")
		lbNoSecret(t, r, pw)
	})
	t.Run("hostile server echoes the password", func(t *testing.T) {
		s := (&lbFTP{user: "alice", pass: "other", echoPass: true}).start(t)
		c := s.check()
		c.Credentials = &Credentials{User: "alice", PasswordFile: lbFTPPasswordFile(t, pw)}
		r, _ := lbFTPRun(t, c)
		lbExpect(t, r, false, ReasonProtocol, PhaseLogin, `login refused for user "alice"`, "password [redacted] is wrong")
		lbNoSecret(t, r, pw)
	})
	t.Run("missing password file", func(t *testing.T) {
		c := &Check{Name: "t", Kind: "ftp", Host: "127.0.0.1", Port: 1, Timeout: time.Second,
			Credentials: &Credentials{User: "alice", PasswordFile: filepath.Join(t.TempDir(), "none")}}
		r, _ := lbFTPRun(t, c)
		lbExpect(t, r, false, ReasonInternalError, PhaseLogin, "reading the ftp password file")
	})
	t.Run("line break in password", func(t *testing.T) {
		c := &Check{Name: "t", Kind: "ftp", Host: "127.0.0.1", Port: 1, Timeout: time.Second,
			Credentials: &Credentials{User: "alice", PasswordFile: lbFTPPasswordFile(t, "a\r\nDELE x")}}
		r, _ := lbFTPRun(t, c)
		lbExpect(t, r, false, ReasonInternalError, PhaseLogin, "line break")
		lbNoSecret(t, r, "DELE x")
	})
}

func TestFTPDataRefused(t *testing.T) {
	s := (&lbFTP{pasvPort: lbFreePort(t, "tcp4", "127.0.0.1:0")}).start(t)
	r, _ := lbFTPRun(t, s.check())
	lbExpect(t, r, false, ReasonRefused, PhaseData, "control channel fine (logged in as anonymous); data connection to 127.0.0.1:"+
		strconv.Itoa(s.pasvPort)+" (EPSV port) failed: connection refused")
}

func TestFTPListRefused(t *testing.T) {
	s := (&lbFTP{listCode: "550 Failed to open directory."}).start(t)
	c := s.check()
	own(&c.FTP).Path = "/nope/"
	r, _ := lbFTPRun(t, c)
	lbExpect(t, r, false, ReasonProtocol, PhaseData, "control channel fine", "LIST answered 550 Failed to open directory.")
}

func TestFTPRetrBounded(t *testing.T) {
	s := (&lbFTP{files: map[string]int{"big.bin": 3 << 20, "small.txt": 1234}}).start(t)
	c := s.check()
	own(&c.FTP).Path = "big.bin"
	r, took := lbFTPRun(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseData, "file of 1048576 bytes (stopped after 1 MiB)")
	if f := r.Facts.FTPFacts; f == nil || !f.DataTruncated || f.DataCommand != "RETR" {
		t.Errorf("facts %+v", f)
	}
	if took > 2500*time.Millisecond {
		t.Errorf("took %s", took)
	}
	own(&c.FTP).Path = "small.txt"
	r, _ = lbFTPRun(t, c)
	lbExpect(t, r, true, ReasonOK, PhaseData, "file of 1234 bytes")
}

func TestFTPS(t *testing.T) {
	p := lbPKI(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{p.good.tls}}
	t.Run("ok with resumed data session", func(t *testing.T) {
		s := (&lbFTP{tls: srvCfg, listing: []byte("secret listing\r\n")}).start(t)
		c := s.check()
		own(&c.FTP).ExplicitTLS = true
		own(&c.TLS).CAFile = lbWriteCAFile(t, p.root)
		r, _ := lbFTPRun(t, c)
		lbExpect(t, r, true, ReasonOK, PhaseData, "FTPS (AUTH TLS, TLS 1.3", `issued by "Test Root CA"`,
			"listing of 16 bytes over a protected data channel (TLS session resumed)")
		if r.Facts.TLSFacts == nil || r.Facts.TLSFacts.Version != "TLS 1.3" {
			t.Errorf("TLS facts %+v", r.Facts.TLSFacts)
		}
		if _, _, resumed := s.snapshot(); len(resumed) != 1 || !resumed[0] {
			t.Errorf("server saw resumed=%v", resumed)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		s := (&lbFTP{tls: srvCfg}).start(t)
		c := s.check()
		own(&c.FTP).ExplicitTLS = true
		r, _ := lbFTPRun(t, c)
		lbExpect(t, r, false, ReasonTLSUntrusted, PhaseTLS, "unknown authority")
	})
	t.Run("no AUTH TLS", func(t *testing.T) {
		s := (&lbFTP{}).start(t)
		c := s.check()
		own(&c.FTP).ExplicitTLS = true
		r, _ := lbFTPRun(t, c)
		lbExpect(t, r, false, ReasonProtocol, PhaseStartTLS, "does not offer FTPS (AUTH TLS answered 500")
	})
}

// Package catalogue prints the profile catalogue for `probe profiles`: the
// list of profiles, and one profile's checks and params, as text or JSON.
// Hosts are shown as written, with ${param} unresolved.
package catalogue

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/connprobe/connprobe/targets"
)

// Output formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
)

// The JSON documents below are a public interface: extend, never rename.

// JSONList is what `probe profiles -o json` prints.
type JSONList struct {
	Profiles []JSONSummary `json:"profiles"`
}

// JSONSummary is one profile in the list.
type JSONSummary struct {
	Name        string   `json:"name"`
	Description string   `json:"description"` // its first line
	File        string   `json:"file"`        // "embedded:profiles/NAME.yml" or the file
	Checks      int      `json:"checks"`      // as written: a port range counts once
	Params      []string `json:"params"`
	Required    []string `json:"required_params"`
}

// JSONProfile is what `probe profiles show NAME -o json` prints.
type JSONProfile struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	File        string           `json:"file"`
	Source      JSONSource       `json:"source"`
	Params      []JSONParam      `json:"params"`
	Checks      []JSONCheck      `json:"checks"`
	NotCovered  []JSONNotCovered `json:"not_covered"`
}

// JSONSource is a source: reference; unset fields are "".
type JSONSource struct {
	Document string `json:"document"`
	Table    string `json:"table"`
	Row      string `json:"row"`
	Note     string `json:"note"`
}

// JSONParam is one param of a profile.
type JSONParam struct {
	Name          string `json:"name"`
	Type          string `json:"type"` // "string" or "bool"
	Required      bool   `json:"required"`
	Default       string `json:"default"` // as written, "" when none; a bool param's is "true" or "false"
	DefaultSource string `json:"default_source"`
	Example       string `json:"example"`
	Description   string `json:"description"`
}

// JSONCheck is one check of a profile, as written.
type JSONCheck struct {
	Name      string     `json:"name"`
	Kind      string     `json:"kind"`
	Host      string     `json:"host"`     // ${param} unresolved
	Port      string     `json:"port"`     // a port, a range or list, or the kind's default
	Protocol  string     `json:"protocol"` // tcp, udp, or for sip also tls
	Direction string     `json:"direction"`
	Level     string     `json:"level"`
	Essential bool       `json:"essential"`
	When      string     `json:"when"` // the bool param that switches it on; "" when always on
	Purpose   string     `json:"purpose"`
	Source    JSONSource `json:"source"`
}

// JSONNotCovered is a row of the source document no check covers.
type JSONNotCovered struct {
	Table string `json:"table"`
	Row   string `json:"row"`
	Why   string `json:"why"`
}

// List prints the catalogue: name, the number of checks, the
// description's first line and the params (required ones marked).
func List(w io.Writer, profs []targets.Profile, format string) error {
	if format == FormatJSON {
		doc := JSONList{Profiles: make([]JSONSummary, 0, len(profs))}
		for _, p := range profs {
			s := JSONSummary{Name: p.Name, Description: firstLine(p.Description), File: p.Source, Checks: len(p.Checks),
				Params: []string{}, Required: []string{}}
			for _, prm := range p.Params {
				s.Params = append(s.Params, prm.Name)
				if prm.Required {
					s.Required = append(s.Required, prm.Name)
				}
			}
			doc.Profiles = append(doc.Profiles, s)
		}
		return writeJSON(w, doc)
	}
	if len(profs) == 0 {
		_, err := fmt.Fprintln(w, "No profiles (add profile files with --profiles.dir).")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCHECKS\tDESCRIPTION\tPARAMS")
	for _, p := range profs {
		var params []string
		for _, prm := range p.Params {
			name := prm.Name
			if prm.Required {
				name += "*"
			}
			params = append(params, name)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.Name, len(p.Checks), clip(firstLine(p.Description), 60), dash(strings.Join(params, ",")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprint(w, "\n* required: the checks that use it are skipped until it is set.\n"+
		"probe profiles show NAME lists a profile's checks and params.\n")
	return err
}

// Show prints every check and param of one profile.
func Show(w io.Writer, p *targets.Profile, format string) error {
	if format == FormatJSON {
		return writeJSON(w, toJSON(p))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Profile %s\n", p.Name)
	wrap(&b, "  ", p.Description)
	fmt.Fprintf(&b, "  file:   %s\n", p.Source)
	if src := p.Origin.String(); src != "" {
		fmt.Fprintf(&b, "  source: %s\n", src)
	}

	b.WriteString("\nParams\n")
	if len(p.Params) == 0 {
		b.WriteString("  none\n")
	}
	for _, prm := range p.Params {
		fmt.Fprintf(&b, "  %s (%s)\n", prm.Name, paramTerms(prm))
		wrap(&b, "      ", prm.Description)
		if prm.DefaultSource != "" {
			wrap(&b, "      ", "default from: "+prm.DefaultSource)
		}
	}

	b.WriteString("\nChecks\n")
	for i := range p.Checks {
		c := &p.Checks[i]
		level := c.Meta.Level
		if c.Meta.When != "" {
			level += ", only with " + c.Meta.When + "=true"
		}
		fmt.Fprintf(&b, "  %s: %s %s, %s, %s\n", c.Name, c.Kind, target(c), c.Meta.Direction, level)
		wrap(&b, "      ", "purpose: "+c.Meta.Purpose)
		wrap(&b, "      ", "source: "+c.Meta.Source.String())
	}

	if len(p.NotCovered) > 0 {
		b.WriteString("\nNot covered\n")
		for _, nc := range p.NotCovered {
			var what []string
			if nc.Table != "" {
				what = append(what, "table "+nc.Table)
			}
			if nc.Row != "" {
				what = append(what, fmt.Sprintf("row %q", nc.Row))
			}
			wrap(&b, "  ", strings.Join(what, ", ")+": "+nc.Why)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Hint tells someone who gave no config and no profile how to pick one:
// the catalogue, and an example command.
func Hint(profs []targets.Profile) string {
	if len(profs) == 0 {
		return "Pick your own with --config.file FILE, or --profile NAME with profiles from --profiles.dir (see README)."
	}
	names := make([]string, 0, len(profs))
	for _, p := range profs {
		names = append(names, p.Name)
	}
	example := append([]string{"probe check --profile " + profs[0].Name}, profs[0].ExampleParams()...)
	return "Pick your own with --config.file FILE or --profile NAME. Profiles: " + strings.Join(names, ", ") + ".\n" +
		"  `probe profiles` lists them, `probe profiles show NAME` shows a profile's checks and params. For example:\n" +
		"  " + strings.Join(example, " ")
}

func toJSON(p *targets.Profile) JSONProfile {
	doc := JSONProfile{
		Name: p.Name, Description: p.Description, File: p.Source, Source: source(p.Origin),
		Params: make([]JSONParam, 0, len(p.Params)), Checks: make([]JSONCheck, 0, len(p.Checks)),
		NotCovered: make([]JSONNotCovered, 0, len(p.NotCovered)),
	}
	for _, prm := range p.Params {
		def := prm.Default
		if prm.Type == targets.ParamBool {
			def = firstSet(def, "false")
		}
		doc.Params = append(doc.Params, JSONParam{
			Name: prm.Name, Type: prm.Type, Required: prm.Required, Default: def,
			DefaultSource: prm.DefaultSource, Example: prm.Example, Description: prm.Description,
		})
	}
	for i := range p.Checks {
		c := &p.Checks[i]
		doc.Checks = append(doc.Checks, JSONCheck{
			Name: c.Name, Kind: c.Kind, Host: c.Host, Port: c.PortText(), Protocol: c.TransportText(),
			Direction: c.Meta.Direction, Level: c.Meta.Level, Essential: c.Meta.Essential(), When: c.Meta.When,
			Purpose: c.Meta.Purpose, Source: source(c.Meta.Source),
		})
	}
	for _, nc := range p.NotCovered {
		doc.NotCovered = append(doc.NotCovered, JSONNotCovered(nc))
	}
	return doc
}

func source(s targets.SourceRef) JSONSource {
	return JSONSource{Document: s.Document, Table: s.Table, Row: s.Row, Note: s.Note}
}

// paramTerms is "string, required, e.g. x" or "bool, default false" and the like.
func paramTerms(p targets.Param) string {
	terms := []string{p.Type}
	switch {
	case p.Required:
		terms = append(terms, "required")
	case p.Type == targets.ParamBool:
		terms = append(terms, "default "+firstSet(p.Default, "false"))
	case p.Default != "":
		terms = append(terms, fmt.Sprintf("default %q", p.Default))
	default:
		terms = append(terms, "optional")
	}
	if p.Example != "" {
		terms = append(terms, "e.g. "+p.Example)
	}
	return strings.Join(terms, ", ")
}

// target is host:port/protocol as written, e.g. "${cloud_host}:443/tcp".
func target(c *targets.CheckSpec) string {
	t := c.Host
	if port := c.PortText(); port != "" {
		t += ":" + port
	}
	if proto := c.TransportText(); proto != "" {
		t += "/" + proto
	}
	return t
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// clip bounds a table cell.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// width is where wrapped text breaks.
const width = 78

// wrap writes text word-wrapped to width, each line indented; paragraphs
// (blank lines) are kept, other line breaks are not.
func wrap(b *strings.Builder, indent, text string) {
	for i, para := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if i > 0 {
			b.WriteString("\n")
		}
		line := indent
		for _, word := range strings.Fields(para) {
			if len(line) > len(indent) && len(line)+1+len(word) > width {
				b.WriteString(line + "\n")
				line = indent
			}
			if len(line) > len(indent) {
				line += " "
			}
			line += word
		}
		if len(line) > len(indent) {
			b.WriteString(line + "\n")
		}
	}
}

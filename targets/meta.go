package targets

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

// metaKeyNames are the check keys only profiles take (CheckMeta).
func metaKeyNames() []string { return []string{"direction", "level", "when", "purpose", "source"} }

// metaKeys adds the profile-only keys to a profile check's handlers, and
// refuses essential:, which a profile check takes from its level.
func (d *decoder) metaKeys(c *CheckSpec, where string, handlers map[string]func(v *yaml.Node), refused map[string]func(k *yaml.Node)) {
	handlers["direction"] = func(v *yaml.Node) { c.Meta.Direction = d.str(v, "direction", where) }
	handlers["level"] = func(v *yaml.Node) { c.Meta.Level = d.str(v, "level", where) }
	handlers["when"] = func(v *yaml.Node) { c.Meta.When = d.str(v, "when", where) }
	handlers["purpose"] = func(v *yaml.Node) { c.Meta.Purpose = strings.TrimSpace(d.str(v, "purpose", where)) }
	handlers["source"] = func(v *yaml.Node) { c.Meta.Source = d.sourceRef(v, where, true) }
	refused["essential"] = func(k *yaml.Node) {
		d.errorf(k.Line, "essential in %s: a profile check takes it from its level; set level: instead (essential, recommended or conditional)", where)
	}
}

// checkMeta validates the profile-only keys of one check; when: is checked
// against the params by the profile.
func (d *decoder) checkMeta(c *CheckSpec, n *yaml.Node, where string) {
	m := &c.Meta
	levels := []string{LevelEssential, LevelRecommended, LevelConditional}
	directions := []string{DirectionOut, DirectionIn}
	switch {
	case c.lines["level"] == 0:
		d.errorf(n.Line, "%s has no level; add level: (essential, recommended or conditional)", where)
	case !slices.Contains(levels, m.Level):
		d.errorf(c.lines["level"], "level of %s must be essential, recommended or conditional, got %q%s", where, m.Level, closeTo(m.Level, levels))
		m.Level = ""
	}
	switch {
	case c.lines["direction"] == 0:
		d.errorf(n.Line, "%s has no direction; add direction: (out: this site connects out; in: it is reached from outside)", where)
	case !slices.Contains(directions, m.Direction):
		d.errorf(c.lines["direction"], "direction of %s must be out or in, got %q%s", where, m.Direction, closeTo(m.Direction, directions))
	}
	if m.Purpose == "" {
		d.errorf(lineOr(c.lines, "purpose", n.Line), "%s has no purpose; add purpose: (what the check proves, for the people reading its result)", where)
	}
	if c.lines["source"] == 0 {
		d.errorf(n.Line, "%s has no source; add source: {document: ..., table: ..., row: ...} (the row it follows) or source: {note: ...} (why it was added without one)", where)
	}
	// when: may also make an essential or recommended check opt-in (one
	// that needs privileges, say); a conditional one cannot do without it.
	if m.Level == LevelConditional && m.When == "" {
		d.errorf(c.lines["level"], "%s is conditional, so it needs when: (the bool param that switches it on)", where)
	}
}

// sourceRef decodes a source: mapping; a check's needs document, table
// and row, or note alone; a profile's document or note.
func (d *decoder) sourceRef(v *yaml.Node, where string, check bool) SourceRef {
	var s SourceRef
	in := "source of " + where
	h := map[string]func(v *yaml.Node){
		"document": func(v *yaml.Node) { s.Document = strings.TrimSpace(d.str(v, "document", in)) },
		"note":     func(v *yaml.Node) { s.Note = strings.TrimSpace(d.str(v, "note", in)) },
	}
	if check {
		h["table"] = func(v *yaml.Node) { s.Table = strings.TrimSpace(d.str(v, "table", in)) }
		h["row"] = func(v *yaml.Node) { s.Row = strings.TrimSpace(d.str(v, "row", in)) }
	}
	if v.Kind != yaml.MappingNode {
		d.fields(v, in, nil, h) // reports a wrong type
		if isNull(v) {
			d.errorf(v.Line, "%s is empty; add document: or note:", in)
		}
		return s
	}
	d.fields(v, in, nil, h)
	docForm := s.Document != "" || s.Table != "" || s.Row != ""
	switch {
	case s.Note != "" && docForm:
		d.errorf(v.Line, "%s sets both note: and document:; use one (a document row, or a note why there is none)", in)
	case s.Note != "":
	case s.Document == "":
		if check {
			d.errorf(v.Line, "%s needs document: with table: and row:, or note: (why the check was added without one)", in)
		} else {
			d.errorf(v.Line, "%s needs document: (or note:)", in)
		}
	case check && (s.Table == "" || s.Row == ""):
		d.errorf(v.Line, "%s names document %q; add table: and row: too (or use note: instead)", in, s.Document)
	}
	return s
}

// notCovered decodes the profile's not_covered: list.
func (d *decoder) notCovered(v *yaml.Node) []NotCovered {
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.errorf(v.Line, "not_covered of the profile must be a list (each entry with table:, row: and why:), got %s", describe(v))
		return nil
	}
	var out []NotCovered
	for i, n := range v.Content {
		n = resolve(n)
		var nc NotCovered
		where := fmt.Sprintf("not_covered entry #%d", i+1)
		d.fields(n, where, nil, map[string]func(v *yaml.Node){
			"table": func(v *yaml.Node) { nc.Table = strings.TrimSpace(d.str(v, "table", where)) },
			"row":   func(v *yaml.Node) { nc.Row = strings.TrimSpace(d.str(v, "row", where)) },
			"why":   func(v *yaml.Node) { nc.Why = strings.TrimSpace(d.str(v, "why", where)) },
		})
		if n.Kind != yaml.MappingNode {
			continue
		}
		if nc.Why == "" {
			d.errorf(n.Line, "%s has no why; add why: (why no check covers it)", where)
		}
		if nc.Table == "" && nc.Row == "" {
			d.errorf(n.Line, "%s names nothing; add table: and row: (the document's row not covered)", where)
		}
		out = append(out, nc)
	}
	return out
}

func validBool(s string) bool { return s == "true" || s == "false" }

// closeTo is suggest's "did you mean" alone, for errors that already list
// the few values allowed.
func closeTo(word string, known []string) string {
	if s := suggest(word, known); strings.HasPrefix(s, " (did you mean") {
		return s
	}
	return ""
}

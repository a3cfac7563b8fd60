package replay

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// A selector is a parsed Calico selector expression, evaluated against
// the labels Felix gives an endpoint. The grammar follows Calico's
// tokenizer and parser (libcalico-go/lib/selector/tokenizer/tokenizer.go,
// libcalico-go/lib/selector/parser/parser.go): `||` binds loosest, then
// `&&`, then any number of leading `!`; an operation is `all()`,
// `global()`, `has(k)`, `k == 'v'`, `k != 'v'`, `k in {'a', 'b'}`,
// `k not in {...}`, `k contains 'v'`, `k starts with 'v'`,
// `k ends with 'v'`, or a parenthesised expression. Strings are in single
// or double quotes, without escapes; whitespace is spaces and tabs. The
// empty selector selects everything.
type selector interface {
	matches(l labels) bool
}

// labels are an endpoint's labels as Felix's label index sees them.
type labels map[string]string

type (
	allSel    struct{}
	globalSel struct{}
	hasSel    struct{ key string }
	// cmpSel compares a label's value; absent labels match only the
	// negative operators (`!=`, `not in`), as Calico's ast.go has it.
	cmpSel struct {
		key, op string
		values  []string
	}
	notSel struct{ operand selector }
	andSel []selector
	orSel  []selector
)

// global() evaluates to true on an endpoint; what makes it "only
// non-namespaced endpoints" is the rewrite of namespace selectors
// (see namespaceScope), as in Calico's ast.go.
func (allSel) matches(labels) bool    { return true }
func (globalSel) matches(labels) bool { return true }
func (s hasSel) matches(l labels) bool {
	_, ok := l[s.key]
	return ok
}
func (s notSel) matches(l labels) bool { return !s.operand.matches(l) }
func (s andSel) matches(l labels) bool {
	for _, op := range s {
		if !op.matches(l) {
			return false
		}
	}
	return true
}
func (s orSel) matches(l labels) bool {
	for _, op := range s {
		if op.matches(l) {
			return true
		}
	}
	return false
}

func (s cmpSel) matches(l labels) bool {
	v, ok := l[s.key]
	switch s.op {
	case "==":
		return ok && v == s.values[0]
	case "!=":
		return !ok || v != s.values[0]
	case "in":
		return ok && contains(s.values, v)
	case "not in":
		return !ok || !contains(s.values, v)
	case "contains":
		return ok && strings.Contains(v, s.values[0])
	case "starts with":
		return ok && strings.HasPrefix(v, s.values[0])
	case "ends with":
		return ok && strings.HasSuffix(v, s.values[0])
	}
	panic("unknown selector operator " + s.op)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// parsed caches parsed selectors by their text: a replay parses the same
// few selectors in every state.
var parsed sync.Map // string -> parseResult

type parseResult struct {
	sel selector
	err error
}

// parseSelector parses a Calico selector expression.
func parseSelector(text string) (selector, error) {
	if r, ok := parsed.Load(text); ok {
		return r.(parseResult).sel, r.(parseResult).err
	}
	sel, err := parseUncached(text)
	if err != nil {
		err = fmt.Errorf("selector %q: %w", text, err)
	}
	parsed.Store(text, parseResult{sel, err})
	return sel, err
}

func parseUncached(text string) (selector, error) {
	toks, err := tokenize(text)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tEOF {
		return allSel{}, nil
	}
	p := &parser{toks: toks}
	sel, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tEOF {
		return nil, fmt.Errorf("unexpected %s after the expression", p.peek())
	}
	return sel, nil
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) or() (selector, error) {
	var terms orSel
	for {
		t, err := p.and()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
		if p.peek().kind != tOr {
			break
		}
		p.next()
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) and() (selector, error) {
	var terms andSel
	for {
		t, err := p.operation()
		if err != nil {
			return nil, err
		}
		terms = append(terms, t)
		if p.peek().kind != tAnd {
			break
		}
		p.next()
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

// operation parses one possibly negated operation; leading `!`s collapse
// to one negation or none, as in Calico's parseOperation.
func (p *parser) operation() (selector, error) {
	negated := false
	for p.peek().kind == tNot {
		p.next()
		negated = !negated
	}
	sel, err := p.positive()
	if err != nil || !negated {
		return sel, err
	}
	return notSel{sel}, nil
}

func (p *parser) positive() (selector, error) {
	t := p.next()
	switch t.kind {
	case tAll:
		return allSel{}, nil
	case tGlobal:
		return globalSel{}, nil
	case tHas:
		return hasSel{t.value}, nil
	case tLParen:
		sel, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next().kind != tRParen {
			return nil, errors.New("expected )")
		}
		return sel, nil
	case tLabel:
		return p.comparison(t.value)
	}
	return nil, fmt.Errorf("unexpected %s", t)
}

func (p *parser) comparison(key string) (selector, error) {
	op := p.next()
	switch op.kind {
	case tOp:
		v := p.next()
		if v.kind != tString {
			return nil, fmt.Errorf("expected a quoted string after %s %s", key, op.value)
		}
		return cmpSel{key: key, op: op.value, values: []string{v.value}}, nil
	case tIn, tNotIn:
		if p.next().kind != tLBrace {
			return nil, fmt.Errorf("expected { after %s %s", key, op.value)
		}
		var values []string
		for p.peek().kind == tString {
			values = append(values, p.next().value)
			if p.peek().kind != tComma {
				break
			}
			p.next()
		}
		if p.next().kind != tRBrace {
			return nil, fmt.Errorf("expected } to close the set of %s %s", key, op.value)
		}
		return cmpSel{key: key, op: op.value, values: values}, nil
	}
	return nil, fmt.Errorf("expected an operator after label %s, found %s", key, op)
}

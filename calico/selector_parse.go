package calico

import (
	"fmt"
	"regexp"
	"strings"
)

// ParseSelector reads a selector in Calico's syntax. calico-pni uses it to
// check every selector it writes (Calico drops a policy whose selector does
// not parse) and to read selectors back. It accepts the grammar of
// libcalico-go's selector parser except global(), which calico-pni never
// writes; an empty string is all().
func ParseSelector(text string) (Selector, error) {
	toks, err := tokenize(text)
	if err != nil {
		return nil, fmt.Errorf("selector %q: %w", text, err)
	}
	p := &parser{toks: toks}
	if p.peek().kind == tokEOF {
		return All(), nil
	}
	s, err := p.or()
	if err == nil && p.peek().kind != tokEOF {
		err = fmt.Errorf("unexpected %s", p.peek())
	}
	if err != nil {
		return nil, fmt.Errorf("selector %q: %w", text, err)
	}
	return s, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokLabel
	tokString
	tokLBrace
	tokRBrace
	tokComma
	tokEq
	tokNe
	tokIn
	tokNotIn
	tokNot
	tokContains
	tokStartsWith
	tokEndsWith
	tokHas
	tokAll
	tokAnd
	tokOr
	tokLParen
	tokRParen
)

type token struct {
	kind tokKind
	text string
}

func (t token) String() string {
	if t.kind == tokEOF {
		return "end of selector"
	}
	return fmt.Sprintf("%q", t.text)
}

var (
	labelRe      = regexp.MustCompile(`^[a-zA-Z0-9_./-]{1,512}`)
	hasRe        = regexp.MustCompile(`^has\(\s*([a-zA-Z0-9_./-]{1,512})\s*\)`)
	allRe        = regexp.MustCompile(`^all\(\s*\)`)
	notInRe      = regexp.MustCompile(`^not\s*in\b`)
	inRe         = regexp.MustCompile(`^in\b`)
	containsRe   = regexp.MustCompile(`^contains`)
	startsWithRe = regexp.MustCompile(`^starts\s*with`)
	endsWithRe   = regexp.MustCompile(`^ends\s*with`)
)

func tokenize(in string) ([]token, error) {
	var toks []token
	for {
		in = strings.TrimLeft(in, " \t")
		if in == "" {
			return append(toks, token{kind: tokEOF}), nil
		}
		afterLabel := len(toks) > 0 && toks[len(toks)-1].kind == tokLabel
		add := func(k tokKind, n int) {
			toks = append(toks, token{k, in[:n]})
			in = in[n:]
		}
		switch {
		case in[0] == '(':
			add(tokLParen, 1)
		case in[0] == ')':
			add(tokRParen, 1)
		case in[0] == '{':
			add(tokLBrace, 1)
		case in[0] == '}':
			add(tokRBrace, 1)
		case in[0] == ',':
			add(tokComma, 1)
		case in[0] == '"' || in[0] == '\'':
			end := strings.IndexByte(in[1:], in[0])
			if end < 0 {
				return nil, fmt.Errorf("unterminated string %s", in)
			}
			toks = append(toks, token{tokString, in[1 : end+1]})
			in = in[end+2:]
		case strings.HasPrefix(in, "=="):
			add(tokEq, 2)
		case strings.HasPrefix(in, "!="):
			add(tokNe, 2)
		case in[0] == '!':
			add(tokNot, 1)
		case strings.HasPrefix(in, "&&"):
			add(tokAnd, 2)
		case strings.HasPrefix(in, "||"):
			add(tokOr, 2)
		case afterLabel && containsRe.MatchString(in):
			add(tokContains, len(containsRe.FindString(in)))
		case afterLabel && startsWithRe.MatchString(in):
			add(tokStartsWith, len(startsWithRe.FindString(in)))
		case afterLabel && endsWithRe.MatchString(in):
			add(tokEndsWith, len(endsWithRe.FindString(in)))
		case hasRe.MatchString(in):
			m := hasRe.FindStringSubmatch(in)
			toks = append(toks, token{tokHas, m[1]})
			in = in[len(m[0]):]
		case allRe.MatchString(in):
			add(tokAll, len(allRe.FindString(in)))
		case notInRe.MatchString(in):
			add(tokNotIn, len(notInRe.FindString(in)))
		case inRe.MatchString(in):
			add(tokIn, 2)
		case labelRe.MatchString(in):
			add(tokLabel, len(labelRe.FindString(in)))
		default:
			return nil, fmt.Errorf("unexpected character %q", in[0])
		}
	}
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) or() (Selector, error) {
	var xs []Selector
	for {
		x, err := p.and()
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
		if p.peek().kind != tokOr {
			return Or(xs...), nil
		}
		p.next()
	}
}

func (p *parser) and() (Selector, error) {
	var xs []Selector
	for {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		xs = append(xs, x)
		if p.peek().kind != tokAnd {
			return And(xs...), nil
		}
		p.next()
	}
}

func (p *parser) unary() (Selector, error) {
	t := p.next()
	switch t.kind {
	case tokNot:
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return Not(x), nil
	case tokLParen:
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.next().kind != tokRParen {
			return nil, fmt.Errorf("missing ')'")
		}
		return x, nil
	case tokHas:
		return Has(t.text), nil
	case tokAll:
		return All(), nil
	case tokLabel:
		return p.comparison(t.text)
	}
	return nil, fmt.Errorf("unexpected %s", t)
}

func (p *parser) comparison(key string) (Selector, error) {
	op := p.next()
	switch op.kind {
	case tokEq, tokNe, tokContains, tokStartsWith, tokEndsWith:
		v := p.next()
		if v.kind != tokString {
			return nil, fmt.Errorf("%s after %q needs a quoted value, not %s", op.text, key, v)
		}
		switch op.kind {
		case tokEq:
			return Eq(key, v.text), nil
		case tokNe:
			return NotEq(key, v.text), nil
		case tokContains:
			return Contains(key, v.text), nil
		case tokStartsWith:
			return StartsWith(key, v.text), nil
		default:
			return EndsWith(key, v.text), nil
		}
	case tokIn, tokNotIn:
		if p.next().kind != tokLBrace {
			return nil, fmt.Errorf("%s after %q needs a set in braces", op.text, key)
		}
		var values []string
		for p.peek().kind != tokRBrace {
			v := p.next()
			if v.kind != tokString {
				return nil, fmt.Errorf("set after %q holds %s; values must be quoted", key, v)
			}
			values = append(values, v.text)
			if p.peek().kind == tokComma {
				p.next()
			} else if p.peek().kind != tokRBrace {
				return nil, fmt.Errorf("set after %q: expected ',' or '}', not %s", key, p.peek())
			}
		}
		p.next()
		if op.kind == tokIn {
			return In(key, values...), nil
		}
		return NotIn(key, values...), nil
	}
	return nil, fmt.Errorf("label %q must be followed by an operator, not %s", key, op)
}

package calico

import (
	"fmt"
	"strings"
)

// ParseSelector reads a selector in Calico's syntax. calico-pni uses it to
// check every selector it writes (Calico drops a policy whose selector does
// not parse) and to read selectors back. It accepts the grammar of
// libcalico-go's selector parser, global() included (calico-pni never
// writes it, but the policy evaluator reads users' policies); an empty
// string is all().
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
	tokGlobal
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

// isLabelChar reports the characters of a label key, as Calico's
// tokenizer accepts them: letters, digits, '_', '.', '/', '-'.
func isLabelChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '/' || c == '-'
}

func isWordChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// labelLen returns the length of the label key at the start of s (at most
// 512 characters, as Calico's tokenizer takes).
func labelLen(s string) int {
	n := 0
	for n < len(s) && n < 512 && isLabelChar(s[n]) {
		n++
	}
	return n
}

// spaceLen returns the length of the spaces and tabs at the start of s.
func spaceLen(s string) int {
	n := 0
	for n < len(s) && (s[n] == ' ' || s[n] == '\t') {
		n++
	}
	return n
}

// words matches a keyword of one or two words ("starts with", "not in"),
// with optional space between them, at the start of s. wordEnd requires
// the keyword not to run on into a longer word. It returns the length
// matched, or 0.
func words(s, first, second string, wordEnd bool) int {
	if !strings.HasPrefix(s, first) {
		return 0
	}
	n := len(first)
	if second != "" {
		n += spaceLen(s[n:])
		if !strings.HasPrefix(s[n:], second) {
			return 0
		}
		n += len(second)
	}
	if wordEnd && n < len(s) && isWordChar(s[n]) {
		return 0
	}
	return n
}

// call matches "name(" optional spaces, an argument, optional spaces, ")"
// at the start of s: has(key) and all(). It returns the argument and the
// length matched, or a length of 0.
func call(s, name string, wantArg bool) (string, int) {
	if !strings.HasPrefix(s, name+"(") {
		return "", 0
	}
	n := len(name) + 1
	n += spaceLen(s[n:])
	arg := ""
	if wantArg {
		l := labelLen(s[n:])
		if l == 0 {
			return "", 0
		}
		arg = s[n : n+l]
		n += l
		n += spaceLen(s[n:])
	}
	if n >= len(s) || s[n] != ')' {
		return "", 0
	}
	return arg, n + 1
}

func tokenize(in string) ([]token, error) {
	toks := make([]token, 0, len(in)/4+1)
	emit := func(k tokKind, n int) {
		toks = append(toks, token{k, in[:n]})
		in = in[n:]
	}
	for {
		in = in[spaceLen(in):]
		if in == "" {
			return append(toks, token{kind: tokEOF}), nil
		}
		afterLabel := len(toks) > 0 && toks[len(toks)-1].kind == tokLabel
		var n int
		var arg string
		switch c := in[0]; {
		case c == '(':
			emit(tokLParen, 1)
		case c == ')':
			emit(tokRParen, 1)
		case c == '{':
			emit(tokLBrace, 1)
		case c == '}':
			emit(tokRBrace, 1)
		case c == ',':
			emit(tokComma, 1)
		case c == '"' || c == '\'':
			end := strings.IndexByte(in[1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unterminated string %s", in)
			}
			toks = append(toks, token{tokString, in[1 : end+1]})
			in = in[end+2:]
		case strings.HasPrefix(in, "=="):
			emit(tokEq, 2)
		case strings.HasPrefix(in, "!="):
			emit(tokNe, 2)
		case c == '!':
			emit(tokNot, 1)
		case strings.HasPrefix(in, "&&"):
			emit(tokAnd, 2)
		case strings.HasPrefix(in, "||"):
			emit(tokOr, 2)
		case afterLabel && strings.HasPrefix(in, "contains"):
			emit(tokContains, len("contains"))
		case afterLabel && words(in, "starts", "with", false) > 0:
			emit(tokStartsWith, words(in, "starts", "with", false))
		case afterLabel && words(in, "ends", "with", false) > 0:
			emit(tokEndsWith, words(in, "ends", "with", false))
		default:
			if arg, n = call(in, "has", true); n > 0 {
				toks = append(toks, token{tokHas, arg})
				in = in[n:]
			} else if _, n = call(in, "all", false); n > 0 {
				emit(tokAll, n)
			} else if _, n = call(in, "global", false); n > 0 {
				emit(tokGlobal, n)
			} else if n = words(in, "not", "in", true); n > 0 {
				emit(tokNotIn, n)
			} else if n = words(in, "in", "", true); n > 0 {
				emit(tokIn, n)
			} else if n = labelLen(in); n > 0 {
				emit(tokLabel, n)
			} else {
				return nil, fmt.Errorf("unexpected character %q", c)
			}
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
	case tokGlobal:
		return Global(), nil
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

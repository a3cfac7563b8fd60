package replay

import (
	"errors"
	"fmt"
	"strings"
)

type tokenKind int

const (
	tEOF tokenKind = iota
	tLabel
	tString
	tOp // ==, !=, contains, starts with, ends with
	tIn
	tNotIn
	tNot
	tAnd
	tOr
	tLParen
	tRParen
	tLBrace
	tRBrace
	tComma
	tAll
	tGlobal
	tHas
)

type token struct {
	kind  tokenKind
	value string
}

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "end of selector"
	case tLabel:
		return "label " + t.value
	case tString:
		return fmt.Sprintf("string %q", t.value)
	case tHas:
		return "has(" + t.value + ")"
	}
	return fmt.Sprintf("%q", t.value)
}

// tokenize splits a selector into tokens the way Calico's tokenizer does:
// after a label come the word operators (contains, starts with, ends
// with, in, not in); elsewhere a run of label characters is a label.
func tokenize(s string) ([]token, error) {
	var out []token
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return append(out, token{kind: tEOF}), nil
		}
		afterLabel := len(out) > 0 && out[len(out)-1].kind == tLabel
		t, rest, err := nextToken(s, afterLabel)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		s = rest
	}
}

var punctuation = map[string]tokenKind{
	"==": tOp, "!=": tOp, "&&": tAnd, "||": tOr,
	"(": tLParen, ")": tRParen, "{": tLBrace, "}": tRBrace, ",": tComma, "!": tNot,
}

func nextToken(s string, afterLabel bool) (token, string, error) {
	for _, p := range []string{"==", "!=", "&&", "||", "(", ")", "{", "}", ",", "!"} {
		if strings.HasPrefix(s, p) {
			return token{kind: punctuation[p], value: p}, s[len(p):], nil
		}
	}
	switch s[0] {
	case '"', '\'':
		end := strings.IndexByte(s[1:], s[0])
		if end < 0 {
			return token{}, "", errors.New("unterminated string")
		}
		return token{kind: tString, value: s[1 : 1+end]}, s[2+end:], nil
	case '=', '&', '|':
		return token{}, "", fmt.Errorf("a lone %q (operators are ==, &&, ||)", s[0])
	}
	if afterLabel {
		return wordOperator(s)
	}
	for _, fn := range []struct {
		prefix string
		kind   tokenKind
	}{{"all(", tAll}, {"global(", tGlobal}} {
		if strings.HasPrefix(s, fn.prefix) {
			rest := strings.TrimLeft(s[len(fn.prefix):], " \t")
			if !strings.HasPrefix(rest, ")") {
				return token{}, "", fmt.Errorf("no ) after %s", fn.prefix)
			}
			return token{kind: fn.kind, value: fn.prefix + ")"}, rest[1:], nil
		}
	}
	if strings.HasPrefix(s, "has(") {
		rest := strings.TrimLeft(s[len("has("):], " \t")
		key := labelKey(rest)
		if key == "" {
			return token{}, "", errors.New("no label name in has(")
		}
		rest = strings.TrimLeft(rest[len(key):], " \t")
		if !strings.HasPrefix(rest, ")") {
			return token{}, "", fmt.Errorf("no ) after has(%s", key)
		}
		return token{kind: tHas, value: key}, rest[1:], nil
	}
	if key := labelKey(s); key != "" {
		return token{kind: tLabel, value: key}, s[len(key):], nil
	}
	return token{}, "", fmt.Errorf("unexpected characters at %q", s)
}

// wordOperator reads the operator that must follow a label.
func wordOperator(s string) (token, string, error) {
	for _, op := range []struct {
		words []string
		kind  tokenKind
	}{
		{[]string{"contains"}, tOp}, {[]string{"starts", "with"}, tOp}, {[]string{"ends", "with"}, tOp},
		{[]string{"not", "in"}, tNotIn}, {[]string{"in"}, tIn},
	} {
		rest, ok := s, true
		for i, w := range op.words {
			if i > 0 {
				rest = strings.TrimLeft(rest, " \t")
			}
			if !strings.HasPrefix(rest, w) {
				ok = false
				break
			}
			rest = rest[len(w):]
		}
		if ok {
			return token{kind: op.kind, value: strings.Join(op.words, " ")}, rest, nil
		}
	}
	return token{}, "", fmt.Errorf("expected an operator at %q", s)
}

// labelKey returns the label key at the start of s: Calico's label
// characters are letters, digits, '_', '.', '/' and '-'.
func labelKey(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '/' || c == '-') {
			return s[:i]
		}
	}
	return s
}

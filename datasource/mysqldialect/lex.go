package mysqldialect

import "strings"

// The TiDB parser knows MySQL, not every MariaDB extension. Where it fails,
// this small lexer finds just enough to decide: the first keyword of a
// statement, and the top-level RETURNING keywords of MariaDB's
// INSERT/DELETE … RETURNING. It understands quoting ('…', "…", `…`,
// backslash escapes, doubled quotes) and comments (#, -- , /* */; the
// content of MySQL's executable comments /*! … */ counts as code).

type tokenKind uint8

const (
	tokWord   tokenKind = iota + 1 // unquoted identifier, keyword or number
	tokQuoted                      // 'string', "string" or `identifier`
	tokPunct                       // any other single character
)

type token struct {
	kind  tokenKind
	text  string // the token's source text
	pos   int    // byte offset in the statement
	depth int    // parenthesis depth at the token
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// lex splits s into tokens. It never fails: an unterminated quote or
// comment runs to the end of s.
func lex(s string) []token {
	var toks []token
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#':
			i = skipLine(s, i)
		case c == '-' && strings.HasPrefix(s[i:], "--") && (i+2 == len(s) || s[i+2] <= ' '):
			i = skipLine(s, i)
		case c == '/' && strings.HasPrefix(s[i:], "/*"):
			switch {
			case strings.HasPrefix(s[i:], "/*!"):
				i = skipVersion(s, i+3)
			case strings.HasPrefix(s[i:], "/*M!"):
				i = skipVersion(s, i+4)
			default:
				end := strings.Index(s[i+2:], "*/")
				if end < 0 {
					return toks
				}
				i += 2 + end + 2
			}
		case c == '*' && strings.HasPrefix(s[i:], "*/"):
			// The end of an executable comment.
			i += 2
		case c == '\'' || c == '"' || c == '`':
			end := skipQuoted(s, i)
			toks = append(toks, token{kind: tokQuoted, text: s[i:end], pos: i, depth: depth})
			i = end
		case isWordByte(c):
			j := i + 1
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, token{kind: tokWord, text: s[i:j], pos: i, depth: depth})
			i = j
		default:
			if c == ')' && depth > 0 {
				depth--
			}
			toks = append(toks, token{kind: tokPunct, text: s[i : i+1], pos: i, depth: depth})
			if c == '(' {
				depth++
			}
			i++
		}
	}
	return toks
}

func skipLine(s string, i int) int {
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(s)
}

// skipVersion skips the optional version number after /*! or /*M!.
func skipVersion(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// skipQuoted returns the offset just past the quoted token at i.
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// firstKeyword returns the upper-cased first word of s, or "".
func firstKeyword(toks []token) string {
	for _, t := range toks {
		if t.kind == tokWord {
			return strings.ToUpper(t.text)
		}
		if t.kind == tokPunct && t.text == "(" {
			continue
		}
		return ""
	}
	return ""
}

// hasWords reports whether toks contain the words of seq in sequence at
// any depth (case-insensitive), e.g. FOR UPDATE.
func hasWords(toks []token, seq ...string) bool {
	for i := 0; i+len(seq) <= len(toks); i++ {
		match := true
		for j, w := range seq {
			if toks[i+j].kind != tokWord || !strings.EqualFold(toks[i+j].text, w) {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// returningOffsets returns the offsets of the top-level RETURNING words.
func returningOffsets(toks []token) []int {
	var out []int
	for _, t := range toks {
		if t.kind == tokWord && t.depth == 0 && strings.EqualFold(t.text, "RETURNING") {
			out = append(out, t.pos)
		}
	}
	return out
}

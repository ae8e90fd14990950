//! Splits filter text into tokens, each with its character position.

use super::FilterError;
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A bare word: a field name, a keyword, or an ISO 8601 duration.
    Word(String),
    Str(String),
    Int(i64),
    Time(Timestamp),
    LParen,
    RParen,
    Comma,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("the string '{s}'"),
            Tok::Int(n) => format!("the number {n}"),
            Tok::Time(t) => format!("the time {t}"),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
}

pub fn lex(input: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token { tok: Tok::LParen, pos: i });
                i += 1;
            }
            ')' => {
                out.push(Token { tok: Tok::RParen, pos: i });
                i += 1;
            }
            ',' => {
                out.push(Token { tok: Tok::Comma, pos: i });
                i += 1;
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(FilterError::new(start, "unterminated string: expected a closing '")),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            s.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        // No stored text can hold it (PostgreSQL cannot store it at all), so
                        // it could never match; refuse it alike on every backend.
                        Some('\0') => {
                            return Err(FilterError::new(i, "a string must not contain the NUL character (U+0000)"));
                        }
                        Some(ch) => {
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token { tok: Tok::Str(s), pos: start });
            }
            c if c.is_ascii_digit() || c == '-' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '-' | ':' | '.' | '+'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let tok = if let Ok(n) = text.parse::<i64>() {
                    Tok::Int(n)
                } else if let Some(t) = Timestamp::parse_rfc3339(&text) {
                    Tok::Time(t)
                } else {
                    return Err(FilterError::new(
                        start,
                        format!("'{text}' is neither an integer nor an RFC 3339 time such as 2030-01-01T00:00:00Z"),
                    ));
                };
                out.push(Token { tok, pos: start });
            }
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                    i += 1;
                }
                out.push(Token { tok: Tok::Word(chars[start..i].iter().collect()), pos: start });
            }
            other => return Err(FilterError::new(start, format!("unexpected character '{other}'"))),
        }
    }
    Ok(out)
}

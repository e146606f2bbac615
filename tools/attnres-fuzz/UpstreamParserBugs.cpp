//===- UpstreamParserBugs.cpp - Inputs that crash Debian's MLIR parser ----===//
//
// Part of the attnres project.
//
//===----------------------------------------------------------------------===//

#include "UpstreamParserBugs.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

using llvm::StringRef;

namespace {

/// MLIR's lexer skips ' ', '\t', '\n', '\r', a NUL inside the buffer and `//`
/// comments (to the next '\n' or '\r') between tokens.
StringRef skipTrivia(StringRef s) {
  while (!s.empty()) {
    char c = s.front();
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0') {
      s = s.drop_front();
      continue;
    }
    if (s.starts_with("//")) {
      size_t end = s.find_first_of("\n\r");
      s = end == StringRef::npos ? StringRef() : s.drop_front(end);
      continue;
    }
    break;
  }
  return s;
}

bool startsWithTrivia(StringRef s) { return skipTrivia(s).size() < s.size(); }

/// After `[`: `]`, or integers (an optional `-` right before 1 to 18 decimal
/// digits, so that every value fits in int64) separated by commas, then `]`.
/// This is a subset of what `DenseI64ArrayAttr::parse` accepts.
bool isIntegerListTail(StringRef s) {
  s = skipTrivia(s);
  if (s.consume_front("]"))
    return true;
  while (true) {
    s.consume_front("-");
    size_t digits = 0;
    while (digits < s.size() && llvm::isDigit(s[digits]))
      ++digits;
    if (digits == 0 || digits > 18)
      return false;
    s = s.drop_front(digits);
    if (!s.empty() && !startsWithTrivia(s) && s.front() != ',' &&
        s.front() != ']')
      return false;
    s = skipTrivia(s);
    if (s.consume_front("]"))
      return true;
    if (!s.consume_front(","))
      return false;
    s = skipTrivia(s);
  }
}

/// After `[`: `]`, or quoted strings with no escapes separated by commas, then
/// `]`.
bool isStringListTail(StringRef s) {
  s = skipTrivia(s);
  if (s.consume_front("]"))
    return true;
  while (true) {
    if (!s.consume_front("\""))
      return false;
    size_t close = s.find_first_of("\"\\\n\r");
    if (close == StringRef::npos || s[close] != '"')
      return false;
    s = skipTrivia(s.drop_front(close + 1));
    if (s.consume_front("]"))
      return true;
    if (!s.consume_front(","))
      return false;
    s = skipTrivia(s);
  }
}

/// Whether some occurrence of `key` in `text` is followed by `=` (the key may
/// be the end of a quoted attribute name) and then by anything but `[` and a
/// tail that `wellFormedTail` accepts.
bool hasBadList(StringRef text, StringRef key,
                llvm::function_ref<bool(StringRef)> wellFormedTail) {
  size_t pos = 0;
  while ((pos = text.find(key, pos)) != StringRef::npos) {
    pos += key.size();
    StringRef rest = text.drop_front(pos);
    rest.consume_front("\"");
    rest = skipTrivia(rest);
    if (!rest.consume_front("="))
      continue;
    rest = skipTrivia(rest);
    if (!rest.consume_front("[") || !wellFormedTail(rest))
      return true;
  }
  return false;
}

/// Whether a quoted attribute name (`"iterator\5Ftypes" = ...`) may hide a
/// key from the search above: some `"` is followed by `=`, and the text has a
/// backslash somewhere.
bool mayHaveEscapedAttributeName(StringRef text) {
  if (!text.contains('\\'))
    return false;
  for (size_t pos = text.find('"'); pos != StringRef::npos;
       pos = text.find('"', pos + 1))
    if (skipTrivia(text.drop_front(pos + 1)).starts_with("="))
      return true;
  return false;
}

/// Whether brackets nest deeper than any real module does. `->` is not a
/// closing bracket.
bool nestsTooDeep(StringRef text) {
  int depth = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '(' || c == '[' || c == '{' || c == '<')
      ++depth;
    else if ((c == ')' || c == ']' || c == '}' ||
              (c == '>' && (i == 0 || text[i - 1] != '-'))) &&
             depth > 0)
      --depth;
    if (depth > 256)
      return true;
  }
  return false;
}

} // namespace

bool mlir::attnres::fuzz::hitsKnownUpstreamParserCrash(StringRef text) {
  return hasBadList(text, "permutation", isIntegerListTail) ||
         hasBadList(text, "dimensions", isIntegerListTail) ||
         hasBadList(text, "interchange", isIntegerListTail) ||
         hasBadList(text, "iterator_types", isStringListTail) ||
         mayHaveEscapedAttributeName(text) || nestsTooDeep(text);
}

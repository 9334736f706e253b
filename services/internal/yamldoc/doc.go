// Package yamldoc is the strict YAML machinery the pipeline file, buildspec
// and appspec parsers share: the Problem and ParseError types, the guards a
// file passes before it is decoded (size, UTF-8, one document, alias bombs),
// a Decoder that walks goccy/go-yaml's AST with positions and refuses what a
// strict format does not allow (merge keys, complex keys, custom tags,
// undefined aliases, duplicate keys), and the mapping of JSON Schema
// violations back to YAML lines and columns.
//
// Each parser keeps its own sentinels (see Sentinels), rules and messages;
// this package only says where and in which words the shared checks report.
package yamldoc

// The undo record of an AT branch, and the tables that hold it.
//
// An AT branch commits locally in phase 1. In the same local transaction it
// writes one undo record: for every row it changed, the row's image before
// the branch first touched it and after its last change, as exact text
// images (undo-log/table_meta.h says how each type is imaged). Phase 2
// commit deletes the record; phase 2 rollback compares the current rows with
// the after images inside the database and, if they match, writes the before
// images back (or deletes rows the branch inserted, or inserts rows it
// deleted), in reverse order of first change.
//
// The record is net per row, not per statement: a row updated three times
// has one entry, its image before the first update and after the last. That
// is all an exact rollback needs, and an upsert needs no special case: the
// entry says whether the row existed before (restore it) or not (delete it).
//
// Text form: JSON (docs/undo-record.md), chosen so an operator can read a
// record with the database's own client. Every image is a JSON string or
// null, so no number passes through a JSON parser's floating point.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dtx::undo {

// One value per column of the record's table entry, in that entry's column
// order; nullopt is SQL NULL.
using Image = std::vector<std::optional<std::string>>;

// A table the branch changed, with the columns its images hold.
struct TableImage {
  std::string schema;                   // as the database names it
  std::string name;
  std::vector<std::string> columns;     // image order = the table's column order at capture
  std::vector<std::size_t> primary_key; // indexes into columns, key order
  friend bool operator==(const TableImage&, const TableImage&) = default;
};

struct RowUndo {
  std::size_t table = 0;          // index into UndoRecord::tables
  std::optional<Image> before;    // nullopt: the row did not exist before the branch
  std::optional<Image> after;     // nullopt: the row does not exist after phase 1
  friend bool operator==(const RowUndo&, const RowUndo&) = default;
};

struct UndoRecord {
  static constexpr int kFormatVersion = 1;
  std::string gtrid;
  std::string branch;               // the xid's bqual (the resource's name)
  std::vector<TableImage> tables;
  std::vector<RowUndo> rows;        // in order of first change; rollback runs them in reverse
  friend bool operator==(const UndoRecord&, const UndoRecord&) = default;
};

// The record as JSON text (docs/undo-record.md).
std::string encode(const UndoRecord& record);

// Reads a record. A record that is not valid JSON, has another format
// version, or whose parts do not fit together (an image with the wrong
// number of values, a row naming a table that is not there, a row with
// neither image, a key index out of range, before and after images with
// different keys, unknown fields, or a gtrid or branch other than the ones
// given) is damage: throws dtx::Error(Errc::damaged) naming the gtrid and
// branch given and what is wrong, never a partial record. encode() refuses
// (Errc::usage) a record whose parts do not fit together, so what it writes
// always decodes. Values that are not valid UTF-8 are written as
// {"hex": "..."} and read back exactly (docs/undo-record.md).
UndoRecord decode(std::string_view text, std::string_view gtrid, std::string_view branch);

// The primary key's values of `image` (of table `t`), in key order. Throws
// Errc::usage if the image is shorter than the key's columns need.
Image key_of(const TableImage& t, const Image& image);

// The global lock's row key for a primary key's values: canonical text (a
// JSON array of the values), the same for the same row whichever statement
// found it. ASCII only: characters past U+007F are \uXXXX escapes, bytes
// that are not UTF-8 {"hex": "..."}, SQL NULL null; no spaces. Throws
// dtx::Error(Errc::usage) naming `table_display` if longer than
// kMaxLockKeyBytes (the row_key column of dtx_global_lock).
inline constexpr std::size_t kMaxLockKeyBytes = 768;
std::string lock_key(const Image& key_values, std::string_view table_display);

}  // namespace dtx::undo

package main

import (
	"io"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// renderTable prints rows under header. Cells wider than maxCol wrap at word
// boundaries; nothing is truncated.
func renderTable(w io.Writer, header []string, rows [][]string, maxCol int) {
	cell := tw.CellConfig{
		Formatting:   tw.CellFormatting{AutoWrap: tw.WrapNormal},
		Alignment:    tw.CellAlignment{Global: tw.AlignLeft},
		ColMaxWidths: tw.CellWidth{Global: maxCol},
	}
	head := cell
	head.Formatting.AutoFormat = tw.Off
	t := tablewriter.NewTable(w, tablewriter.WithConfig(tablewriter.Config{Header: head, Row: cell}))
	t.Header(header)
	_ = t.Bulk(rows)
	_ = t.Render()
}

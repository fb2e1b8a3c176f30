package report

import (
	"fmt"
	"image/color"
	"os"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/assetsup/webhooks/bench/internal/stats"
)

// writeChart draws the trigger → receipt latencies of the half-load phase as a
// histogram beside their CDF, with p50/p95/p99 marked, into a PNG at path.
func writeChart(path string, lat []time.Duration, title string) error {
	if len(lat) == 0 {
		return fmt.Errorf("no latencies to draw")
	}
	sorted := slices.Clone(lat)
	slices.Sort(sorted)
	vals := make(plotter.Values, len(sorted))
	for i, d := range sorted {
		vals[i] = float64(d) / float64(time.Millisecond)
	}
	p50, p95, p99 := stats.Millis(stats.Percentile(sorted, 50)), stats.Millis(stats.Percentile(sorted, 95)), stats.Millis(stats.Percentile(sorted, 99))

	hist := plot.New()
	hist.Title.Text = "Histogram"
	hist.X.Label.Text = "trigger → receipt (ms)"
	hist.Y.Label.Text = "deliveries"
	h, err := plotter.NewHist(vals, 60)
	if err != nil {
		return err
	}
	h.FillColor = color.RGBA{R: 70, G: 130, B: 180, A: 255}
	hist.Add(h, plotter.NewGrid())

	cdf := plot.New()
	cdf.Title.Text = fmt.Sprintf("CDF   p50 %.0f ms · p95 %.0f ms · p99 %.0f ms", p50, p95, p99)
	cdf.X.Label.Text = "trigger → receipt (ms)"
	cdf.Y.Label.Text = "fraction delivered"
	cdf.Y.Min, cdf.Y.Max = 0, 1
	pts := make(plotter.XYs, len(vals))
	for i, v := range vals {
		pts[i] = plotter.XY{X: v, Y: float64(i+1) / float64(len(vals))}
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	line.Color = color.RGBA{R: 70, G: 130, B: 180, A: 255}
	line.Width = vg.Points(1.5)
	cdf.Add(line, plotter.NewGrid())
	for _, m := range []struct {
		v   float64
		lbl string
		c   color.RGBA
	}{{p50, "p50", color.RGBA{G: 140, A: 255}}, {p95, "p95", color.RGBA{R: 220, G: 140, A: 255}}, {p99, "p99", color.RGBA{R: 200, A: 255}}} {
		mark, err := plotter.NewLine(plotter.XYs{{X: m.v, Y: 0}, {X: m.v, Y: 1}})
		if err != nil {
			return err
		}
		mark.Color = m.c
		mark.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		cdf.Add(mark)
		cdf.Legend.Add(fmt.Sprintf("%s %.0f ms", m.lbl, m.v), mark)
	}
	cdf.Legend.Top = false
	cdf.Legend.Left = false

	const w, ht = 11 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(w, ht)
	dc := draw.New(img)
	top := draw.Crop(dc, 0, 0, 0, -0.35*vg.Inch)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 2, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{hist, cdf}}, tiles, top)
	hist.Draw(canvases[0][0])
	cdf.Draw(canvases[0][1])
	// The overall title across the top.
	sty := draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, 12), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	dc.FillText(sty, vg.Point{X: w / 2, Y: ht - vg.Millimeter*2}, title)

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	png := vgimg.PngCanvas{Canvas: img}
	if _, err := png.WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

package sensors

import "context"

// Measurement is one value a sensor measured.
type Measurement struct {
	// Quantity is "temperature", "humidity", …
	Quantity string
	// Value is in Unit, a SenML unit name ("Cel", "%RH").
	Value float64
	Unit  string
}

// Sensor takes measurements. Read must honour ctx and may be called from one
// goroutine at a time.
type Sensor interface {
	Read(ctx context.Context) ([]Measurement, error)
}

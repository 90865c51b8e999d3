package main

import (
	"context"
	"fmt"
	"io"
)

func benchCmd(ctx context.Context, args []string, out io.Writer) error {
	return fmt.Errorf("not built yet")
}

//go:build !linux

package benchenv

func fsName(string) string { return "unknown" }

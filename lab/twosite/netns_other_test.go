//go:build !linux

package twosite

func beforeTests() {}

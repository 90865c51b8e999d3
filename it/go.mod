module github.com/xact-io/xact/it

go 1.26.0

require github.com/xact-io/xact v0.0.0

replace github.com/xact-io/xact => ../

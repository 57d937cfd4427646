module fine-grained-monitor/tools/image/testimages

go 1.26.0
